// Callers of the client also use its values (TaskOutcome, ClientKey, ProviderProfile, ...).
@_exported import TaskModel
