package translations

// The external test reads these: an in-package test file that imported kubectl's command
// packages would make this package depend on them, and be initialised after them.
var (
	InstallErr = func() error { return installErr }
	Asked      = func() bool { return asked }
)
