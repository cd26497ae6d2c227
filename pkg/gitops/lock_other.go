//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package gitops

// lockFile is a no-op where flock is not available; git's own index lock still refuses two
// writers in the same clone.
func lockFile(string) (func(), error) { return func() {}, nil }
