/// The fake provider API (DESIGN §6). Filled by issue 3.
public enum SimulatorNamespace {}
