/// The getTaskResult protocol (DESIGN §1). Filled by issue 3.
public enum TaskAPI {}
