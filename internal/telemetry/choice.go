package telemetry

import "fmt"

// Choice is what a package's Telemetry option was given. The option only
// records it (converting the *tracing.Telemetry to a *T); the package's
// constructor resolves it, so that every package refuses Telemetry(nil)
// alike and takes Default when the option is left out.
type Choice struct {
	t   *T
	set bool
}

// Set records t, nil included.
func (c *Choice) Set(t *T) { c.t, c.set = t, true }

// Resolve returns the T given, Default when none was, or for a nil one
// the error that names the option, prefixed by pkg.
func (c Choice) Resolve(pkg string) (*T, error) {
	if !c.set {
		return Default(), nil
	}
	if c.t == nil {
		return nil, fmt.Errorf("%s: Telemetry(nil): pass one from tracing.New, or leave the option out (tracing.Default())", pkg)
	}
	return c.t, nil
}
