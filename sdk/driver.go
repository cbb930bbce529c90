package sdk

import (
	"context"
	"errors"
	"fmt"
)

// Driver runs the instances of one kind of app server: it starts, stops,
// installs and reports on one instance per call. Releases, locks, health
// checks and history are the agent's, the same for every Driver.
//
// The agent calls a Driver for different instances concurrently, so it must
// be safe for concurrent use. For one instance Start, Stop, Install and
// Step never overlap (the agent holds the instance's lock), but Status and
// Logs take no lock and may run during a Start or Stop of that instance.
//
// A plugin process may be killed and started again at any time: by a
// crash, or a restart of the agent. Keep what a Driver must remember of an
// instance on disk, in [Instance.StateDir], or find it in /proc; a Driver
// that keeps nothing in memory is also safe for concurrent use.
//
// Each call's ctx is done when the step's deadline passes (step_timeout in
// agent.yaml, 15 minutes by default) or when the client goes away or is
// interrupted: wait in a select on ctx.Done(), and return an error that
// wraps ctx.Err(). Start, Stop, Install and Step report what they wait for
// with [Progress].
//
// An error reaches the flow and the Jenkins console as its text (the
// package comment says what else of it crosses the plugin boundary): say
// what failed, on what, and what to look at. It may span several lines,
// such as the end of a log. A method that succeeds reports a [Result].
//
// Package sdktest checks a Driver through the plugin protocol, and package
// sdk/proc holds the process and file plumbing the in-tree drivers share.
type Driver interface {
	// Describe says what the driver is (see Description). The agent calls
	// it once per service when it starts, and keeps the answer.
	Describe(ctx context.Context) (Description, error)

	// Validate checks one instance's config when the agent starts; an
	// error stops the agent. The agent puts
	// "services.<service>.instances.<instance>." in front of the error,
	// so it begins with the key: "dir: /srv/a1: no such directory".
	// Check what is cheap to check: that paths exist, durations parse,
	// programs are on PATH. The other methods run later, and must still
	// cope with a directory that has gone since.
	Validate(ctx context.Context, inst Instance) error

	// Start starts the instance and returns once its process is up, not
	// once it serves: the agent's health step waits for that. Starting a
	// running instance succeeds and says so ("already running (pid
	// 4711)"): flows and people retry, and restart is Stop then Start.
	//
	// The app server must outlive the call, the plugin and the agent:
	// start it with exec.Command, not exec.CommandContext, in a session
	// of its own (Setsid), and record its pid in StateDir. Watch it for a
	// moment, so that a server that dies at once fails Start with a
	// reason, not the health check minutes later.
	Start(ctx context.Context, inst Instance) (Result, error)

	// Stop stops the instance and returns once its process has exited,
	// sending SIGKILL when it has not exited in time (a stop_timeout key,
	// usually) or when ctx is done first. It must not return while the
	// process still holds the instance's port, which the next Start
	// needs. Stopping a stopped instance succeeds and says so ("not
	// running").
	Stop(ctx context.Context, inst Instance) (Result, error)

	// Install puts the release's artifact in place as the instance's
	// application. The agent has already staged the release and made it
	// current; when Install fails, the agent makes the old ones current
	// and previous again. Rollback is Install with an older release.
	// Whether the instance is stopped meanwhile is the flow's choice: the
	// built-in deploy flow stops it, and an app server that hot-deploys
	// works either way.
	//
	// Install copies rel.Artifact (or links to it) and never moves or
	// changes it: the agent keeps it for rollback. It replaces the old
	// application atomically (a temporary file beside it, sync, rename,
	// sync the directory), so that a failed Install leaves the old one
	// working. It must be safe to repeat: an agent killed during an
	// install or rollback calls Install again when it starts, before it
	// serves, with the release it returns to, which may be in place
	// already or half-copied.
	Install(ctx context.Context, inst Instance, rel Release) (Result, error)

	// Status reports whether the instance's process runs (see Status). A
	// stopped instance is no error. Every status step calls it, without
	// the instance's lock: keep it cheap.
	Status(ctx context.Context, inst Instance) (Status, error)

	// Logs returns the end of the instance's log: as many of its last
	// lines as lines says. The agent asks for 100 unless the caller says
	// otherwise, and never for more than 10000. A log that does not exist yet is no error. When a health
	// check fails, the agent appends the log's last lines to the error,
	// so that the console says why the server did not come up.
	Logs(ctx context.Context, inst Instance, lines int) (string, error)

	// Step runs a custom step that Describe declares, under the
	// instance's lock like Start. args are the flow's arguments as
	// strings (count = 20 arrives as "20", true as "true"); Step checks
	// them and its errors begin with the argument's name. For a name it
	// does not declare it returns an error wrapping ErrUnknownStep; a
	// driver without custom steps embeds NoSteps. The agent runs the core
	// steps (stop, start, restart, install, rollback, health, status,
	// logs, drain, undrain, run) itself, so a step with one of those names
	// never reaches Step.
	Step(ctx context.Context, inst Instance, name string, args map[string]string) (Result, error)
}

// ErrUnknownStep is returned (wrapped, with %w) by Step for a name the
// driver does not declare. It is the one error that keeps its identity
// across the plugin boundary: errors.Is finds it on the agent's side.
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

// Description is what a driver says of itself in Describe. The agent
// refuses to start with an instance key in agent.yaml that Config does not
// declare, or without one that is Required, and refuses to run a step that
// Steps does not declare. Names must be unique and non-empty; step names
// are letters, digits, - and _.
type Description struct {
	// Name is what agent.yaml's driver: says, the key of the plugin's pin
	// under plugins:, and the end of the plugin's file name:
	// baepo-plugin-<name>.
	Name    string
	Version string        // the driver's own version
	Config  []ConfigField // instance keys of agent.yaml besides port (Instance.Port)
	Steps   []StepInfo    // custom steps, callable from flows with i:step(name, args)
	// HotDeploy says the driver can install a release into the running
	// server beside the running one, without a restart (Release.Hot). Such
	// a driver must also declare a custom step "retire", which removes the
	// releases the hot install left running once their sessions end. The
	// agent refuses deploy_mode: hot for a driver that does not say both.
	HotDeploy bool
}

// ConfigField is one instance config key a driver reads. The agent quotes
// Doc when a Required key is missing: "services.shop.instances.a1.dir:
// missing (<Doc>)".
type ConfigField struct {
	Name     string
	Doc      string
	Required bool
}

// StepInfo is one custom step a driver offers.
type StepInfo struct {
	Name string
	Doc  string // what it does, its args and its output
}

// Instance is one instance as the agent's config describes it.
type Instance struct {
	Service string // service name, a key of services: in agent.yaml
	Name    string // instance name, unique within the service
	// Port is the instance's port: key, the HTTP port it serves on; the
	// agent's health step probes http://127.0.0.1:<Port><path>.
	Port    int
	Context string // the service's context: key, the webapp's context path: "/" or "/app"
	// Config holds the instance's other keys from agent.yaml, those
	// Describe declares, as strings: 60 arrives as "60", true as "true".
	Config map[string]string
	// Mode is the service's deploy_mode in agent.yaml: "hot" or
	// "restart" (the default). Validate checks what hot deploys need when
	// it is "hot"; Install reads Release.Hot, not Mode.
	Mode string
	// StateDir is data_dir/instances/<service>/<instance>, the agent's
	// directory for the instance. A driver may keep pid files and logs of
	// its own there; the agent keeps releases/, current and previous in
	// it. It is relative when agent.yaml's data_dir is.
	StateDir string
}

// Release is the artifact a release installs.
type Release struct {
	ID string // the release's id, unique per instance
	// Artifact is the path of the artifact file (WAR or JAR) in the
	// release's directory, hard-linked from the agent's artifact store. It
	// is the agent's: Install copies it and never moves or changes it.
	Artifact string
	Name     string // the artifact's original file name, e.g. app.war
	SHA256   string // the artifact's digest
	// Hot asks for a hot install: put the release into the running server
	// beside the release it runs, switch new requests to it without a
	// restart, and leave the old one running for its sessions until the
	// driver's "retire" step. A failed hot install leaves the old release
	// serving. When the server is stopped, Install places the release so
	// that the next start serves it alone. The agent sets Hot only for a
	// driver whose Description says HotDeploy.
	Hot bool
}

// Result is what a step that succeeded reports.
type Result struct {
	// Message is one line for the agent's log, the run's summary and the
	// history.
	Message string
	// Output holds details a flow reads from the step's table, such as the
	// pid or a thread dump: long text goes here, not in Message. An empty
	// map arrives as nil.
	Output map[string]string
}

// Status is what Status reports of an instance: whether its process runs,
// its pid, and a line that says so. A stopped instance is Running false,
// not an error.
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
// 4711 to exit"): the agent logs it, with the instance and the step, and
// streams it to the baepo client's output while the step runs. Use it for
// whatever takes a while in Start, Stop, Install and Step; a plugin's lines
// from the other methods do not reach the agent. A plugin may call it from
// several goroutines; lines it reports after the method returned are
// dropped. Outside a step it does nothing.
func Progress(ctx context.Context, msg string) {
	if fn, ok := ctx.Value(progressKey{}).(func(string)); ok {
		fn(msg)
	}
}
