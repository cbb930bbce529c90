package sdk

import (
	"context"
	"errors"
	"fmt"
)

// Driver runs the instances of one kind of app server. The agent calls it
// for one instance at a time per instance (it holds the instance's lock), but
// for different instances concurrently: implementations must be safe for
// concurrent use.
type Driver interface {
	// Describe says what the driver is: its name, version, the instance
	// config keys it reads from agent.yaml, and its custom steps.
	Describe(ctx context.Context) (Description, error)
	// Validate checks one instance's config when the agent starts. Its
	// errors name the key: "catalina_base: /opt/x: no such directory".
	Validate(ctx context.Context, inst Instance) error
	// Start starts the instance and returns once its process is up (not
	// necessarily serving: the agent's health check waits for that).
	// Starting a running instance succeeds and says so.
	Start(ctx context.Context, inst Instance) (Result, error)
	// Stop stops the instance and returns once its process has exited,
	// killing it when it does not exit in time. Stopping a stopped instance
	// succeeds and says so.
	Stop(ctx context.Context, inst Instance) (Result, error)
	// Install puts the release's artifact in place as the instance's
	// application. The agent has already staged and switched the release.
	Install(ctx context.Context, inst Instance, rel Release) (Result, error)
	// Status reports whether the instance runs, and with what pid.
	Status(ctx context.Context, inst Instance) (Status, error)
	// Logs returns the last lines of the instance's log.
	Logs(ctx context.Context, inst Instance, lines int) (string, error)
	// Step runs a custom step the driver declared in Describe. An unknown
	// name returns an error wrapping ErrUnknownStep.
	Step(ctx context.Context, inst Instance, name string, args map[string]string) (Result, error)
}

// ErrUnknownStep is returned (wrapped) by Step for a name the driver does not
// declare.
var ErrUnknownStep = errors.New("unknown step")

// NoSteps is the Step of a driver that has no custom steps: embed it, and
// declare no Steps in Describe.
//
//	type Driver struct{ sdk.NoSteps }
//
// The agent refuses a step the driver does not declare before it calls the
// driver, so NoSteps only answers a caller that skips that check.
type NoSteps struct{}

// Step refuses every name with an error wrapping ErrUnknownStep.
func (NoSteps) Step(ctx context.Context, inst Instance, name string, args map[string]string) (Result, error) {
	return Result{}, fmt.Errorf("step %q on instance %s/%s: %w (the driver has no custom steps)", name, inst.Service, inst.Name, ErrUnknownStep)
}

// Description is what a driver says of itself.
type Description struct {
	Name    string        // "tomcat", "jetty": what agent.yaml's driver: names
	Version string        // the driver's own version
	Config  []ConfigField // instance keys of agent.yaml besides port
	Steps   []StepInfo    // custom steps, callable from flows with i:step(name)
}

// ConfigField is one instance config key a driver reads.
type ConfigField struct {
	Name     string
	Doc      string
	Required bool
}

// StepInfo is one custom step a driver offers.
type StepInfo struct {
	Name string
	Doc  string
}

// Instance is one instance as the agent's config describes it.
type Instance struct {
	Service string            // service name, a key of services: in agent.yaml
	Name    string            // instance name, unique within the service
	Port    int               // the HTTP port the instance serves on (127.0.0.1)
	Context string            // the webapp context path: "/" or "/app"
	Config  map[string]string // the instance's other keys from agent.yaml
	// StateDir is a directory the agent keeps for this instance, where a
	// driver may keep pid files and logs of its own.
	StateDir string
}

// Release is the artifact a release installs.
type Release struct {
	ID       string // the release's id, unique per instance
	Artifact string // absolute path of the artifact file (WAR or JAR)
	Name     string // the artifact's original file name, e.g. app.war
	SHA256   string // the artifact's digest
}

// Result is what a step that succeeded reports.
type Result struct {
	Message string            // one line for logs and history
	Output  map[string]string // details a flow can read from the step's table
}

// Status is what Status reports of an instance.
type Status struct {
	Running bool
	PID     int
	Message string
}

type progressKey struct{}

// WithProgress returns a context whose Progress calls reach fn. The agent
// uses it to stream a step's progress lines to the client.
func WithProgress(ctx context.Context, fn func(msg string)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

// Progress reports a line of progress of the running step ("waiting for pid
// 4711 to exit"). Outside a step it does nothing.
func Progress(ctx context.Context, msg string) {
	if fn, ok := ctx.Value(progressKey{}).(func(string)); ok {
		fn(msg)
	}
}
