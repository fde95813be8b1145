// The driver hands out and takes the core's values (PollingEngine.Configuration, messages, ...).
@_exported import PollerCore
