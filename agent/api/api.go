// Package api is the agent's HTTP protocol, the one place both sides read
// it from: the wire types, the routes and the paths built from them, the
// newline-delimited JSON event stream of a step, and [Client], the typed Go
// client of the API. The agent's HTTP edge (agent/httpapi) serves it; the
// baepo client talks to agents only through it.
//
// Every request but GET /healthz carries "Authorization: Bearer <token>".
// Errors are JSON [Error] bodies. A step (POST [RouteStep]) answers 200 with
// a stream of [Event]s: progress lines while the step runs, and a last
// event that carries either the Result or the Error.
//
// It knows nothing of either side's internals.
package api

import (
	"fmt"
	"time"
)

// Error codes. The agent's HTTP edge maps each to its HTTP status, in one
// place (httpapi.ErrorStatusCode); the status is given here for readers.
const (
	CodeBadRequest  = "bad_request"        // 400: malformed input, a name with .. or /, a command's unknown or missing argument
	CodeAuth        = "unauthorized"       // 401: no or wrong token
	CodeNotFound    = "not_found"          // 404: no such service, instance, step, command or artifact
	CodeNotAllowed  = "method_not_allowed" // 405: the route exists, not with this method
	CodeBusy        = "busy"               // 409: another step holds the instance, or another run the service
	CodeTooLarge    = "too_large"          // 413: the body exceeds the limit
	CodeBadArtifact = "unusable_artifact"  // 422: digest mismatch, not a zip
	CodeStepFailed  = "step_failed"        // in a step stream: the step ran and failed
	CodeInternal    = "internal"           // 500
)

// Error is the body of every error response, and the last event of a
// failed step. The agent's core returns it as its typed error too.
type Error struct {
	Message string `json:"error"`
	Code    string `json:"code"`
	Holder  *Lock  `json:"holder,omitempty"` // with CodeBusy: who holds the instance
}

func (e *Error) Error() string { return e.Message }

// Errorf makes an Error of code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Build identifies the CI build behind a request.
type Build struct {
	Tag    string `json:"tag,omitempty"`
	URL    string `json:"url,omitempty"`
	Job    string `json:"job,omitempty"`
	Number string `json:"number,omitempty"`
}

// Lock says who holds an instance.
type Lock struct {
	Run   string    `json:"run,omitempty"`
	Step  string    `json:"step"`
	Build Build     `json:"build"`
	User  string    `json:"user,omitempty"`
	Since time.Time `json:"since"`
}

// Agent answers GET /v1/agent.
type Agent struct {
	Version string   `json:"version"`
	Drivers []string `json:"drivers"`           // built in and pinned plugins
	Plugins []Plugin `json:"plugins,omitempty"` // the pinned plugins
}

// Plugin is a driver plugin pinned in agent.yaml.
type Plugin struct {
	Name    string `json:"name"`
	Path    string `json:"path"`    // where the agent looks for it
	Running bool   `json:"running"` // started and not exited
}

// Services answers GET /v1/services: what a flow may call on the
// agent's instances, read without changing anything (a dry run checks its
// steps against it).
type Services struct {
	Services []Service `json:"services"`
	// Commands are the commands of agent.yaml's commands:, which every
	// instance may run (the run step). An agent older than the field
	// leaves it out: nil says nothing, an empty list allows none.
	Commands []Command `json:"commands"`
}

// Service is one service of the agent's config.
type Service struct {
	Name      string   `json:"name"`
	Driver    string   `json:"driver"`
	Context   string   `json:"context"`
	Instances []string `json:"instances"`
	// Steps are the driver's own steps, besides the core ones; nil from an
	// agent older than the field.
	Steps []DriverStep `json:"steps"`
	// Balancers names the kind of load balancer ("haproxy", "command") of
	// each instance that has one: those can be drained and undrained.
	Balancers map[string]string `json:"balancers,omitempty"`
	// Mode is the service's deploy_mode, "hot" or "restart"; "" from an
	// agent older than the field, which only restarts.
	Mode string `json:"mode,omitempty"`
	// HotDeploy says that the service's driver can hot deploy: install and
	// rollback take mode hot.
	HotDeploy bool `json:"hot_deploy,omitempty"`
}

// DriverStep is a step a driver offers besides the core ones.
type DriverStep struct {
	Name string `json:"name"`
	Doc  string `json:"doc,omitempty"`
}

// StepRequest is the body of a step call.
//
// Run identifies the client run the step belongs to. The first step of a
// run that changes an instance (engine/step's Changes) takes the service's
// lease for that run; such steps of other runs get CodeBusy until the run
// releases it ([RouteLease]) or leaves it idle for LeaseTTL. Such a step
// without a Run gets CodeBusy as well while a run holds the service, and
// holds the service itself only while it runs.
type StepRequest struct {
	Args  map[string]any `json:"args,omitempty"`
	Build Build          `json:"build"`
	User  string         `json:"user,omitempty"`
	Run   string         `json:"run,omitempty"`
}

// LeaseTTL is how long a service lease outlives the last step of its run.
const LeaseTTL = 2 * time.Minute

// Event is one line of a step's response stream.
type Event struct {
	Time   time.Time   `json:"time"`
	Level  string      `json:"level,omitempty"` // debug, info, warn, error
	Msg    string      `json:"msg,omitempty"`
	Result *StepResult `json:"result,omitempty"`
	Error  *Error      `json:"error,omitempty"`
}

// StepResult is the outcome of a step that succeeded.
type StepResult struct {
	Message  string         `json:"message,omitempty"`
	Output   map[string]any `json:"output,omitempty"`
	Release  string         `json:"release,omitempty"`
	Duration time.Duration  `json:"duration_ns"`
}

// ArtifactRef is the "artifact" argument of an install step: an artifact
// the agent already has (SHA256 alone) or one it downloads (URL + SHA256).
type ArtifactRef struct {
	SHA256 string `json:"sha256"`
	Name   string `json:"name,omitempty"` // the file name the user gave, for history
	URL    string `json:"url,omitempty"`
}

// HistoryQuery selects the entries and runs of GET /v1/history; zero
// fields match everything. A run matches Service, Instance and Step when
// one of its steps on the agent does.
type HistoryQuery struct {
	Service, Instance, Step string
	Build                   string    // a build tag (BUILD_TAG), or job#number
	Since                   time.Time // entries that began (runs that started) at or after Since
	Limit                   int       // at most this many entries and this many runs, newest first; 0 = all
}

// Released answers DELETE [RouteLease].
type Released struct {
	Released bool `json:"released"`
}

// Stored answers PUT [RouteArtifact].
type Stored struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// History answers GET /v1/history.
type History struct {
	Entries []HistoryEntry `json:"entries"`
	// Runs is never nil from an agent that records runs: an agent older
	// than run records leaves it out.
	Runs []Run `json:"runs"`
}

// HistoryEntry is one step in an agent's journal.
type HistoryEntry struct {
	ID       int64         `json:"id"`
	Time     time.Time     `json:"time"`
	Service  string        `json:"service"`
	Instance string        `json:"instance"`
	Step     string        `json:"step"`
	Release  string        `json:"release,omitempty"`
	Result   string        `json:"result"` // ok, failed, interrupted
	Message  string        `json:"message,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	Build    Build         `json:"build"`
	User     string        `json:"user,omitempty"`
	Run      string        `json:"run,omitempty"` // the client run it belongs to
}

// Outcomes of a run that the agent gives; any other is the client's
// (succeeded, failed-rolled-back, …).
const (
	OutcomeRunning = "running" // no end yet: the run goes on, or its client died
	OutcomeUnknown = "unknown" // the agent restarted before the run's client said how it ended
)

// Run is one client run as an agent's journal has it. The run's first
// journaled step on the agent (a [StepRequest] with Run) opens it; its
// client ends it with PUT [RouteRun]. An agent on which the run ran no
// journaled step (status, logs) has no record of it.
type Run struct {
	ID        string         `json:"id"`
	Started   time.Time      `json:"started"`               // the client's start once the run ended, else when its first step here began
	Ended     time.Time      `json:"ended,omitzero"`        // when the agent recorded the end
	Duration  time.Duration  `json:"duration_ns,omitempty"` // the whole run's, as its client measured it
	Template  string         `json:"template,omitempty"`
	Outcome   string         `json:"outcome"`             // [OutcomeRunning], [OutcomeUnknown] or the client's
	ExitCode  *int           `json:"exit_code,omitempty"` // absent while running and when unknown
	Error     string         `json:"error,omitempty"`     // why it failed, in one line
	Artifacts []ArtifactRef  `json:"artifacts,omitempty"`
	Counts    map[string]int `json:"counts,omitempty"` // the run's instances by result (ok, failed, …), on every server
	Build     Build          `json:"build"`
	User      string         `json:"user,omitempty"`
	Instances []string       `json:"instances"` // service/instance of its steps on this agent
	Steps     int            `json:"steps"`     // how many of its steps this agent journaled
}

// RunEnd is the body of PUT [RouteRun]: how a run ended, as its client
// says. Every agent on which the run ran a journaled step gets the same.
type RunEnd struct {
	Started   time.Time      `json:"started"`
	Duration  time.Duration  `json:"duration_ns"`
	Template  string         `json:"template"`
	Outcome   string         `json:"outcome"`
	ExitCode  int            `json:"exit_code"`
	Error     string         `json:"error,omitempty"` // its first line is kept
	Artifacts []ArtifactRef  `json:"artifacts,omitempty"`
	Counts    map[string]int `json:"counts,omitempty"`
}
