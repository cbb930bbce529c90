// Package api holds the wire types of the agent's HTTP API, shared by the
// agent and the client. It knows nothing of either side's internals.
//
// Every request but GET /healthz carries "Authorization: Bearer <token>".
// Errors are JSON [Error] bodies with the status of their code. A step
// (POST /v1/services/:service/instances/:instance/steps/:step) answers 200
// with a stream of newline-delimited JSON [Event]s: progress lines while the
// step runs, and a last event that carries either the Result or the Error.
package api

import (
	"net/http"
	"time"
)

// Error codes and the HTTP status each one maps to.
const (
	CodeBadRequest  = "bad_request"       // 400: malformed input, a name with .. or /
	CodeAuth        = "unauthorized"      // 401: no or wrong token
	CodeNotFound    = "not_found"         // 404: no such service, instance, step or artifact
	CodeBusy        = "busy"              // 409: another step holds the instance
	CodeTooLarge    = "too_large"         // 413: the body exceeds the limit
	CodeBadArtifact = "unusable_artifact" // 422: digest mismatch, not a zip
	CodeStepFailed  = "step_failed"       // in a step stream: the driver reported a failure
	CodeInternal    = "internal"          // 500
	CodeUnavailable = "unavailable"       // 503: the agent is shutting down
)

// Status maps an error code to its HTTP status.
func Status(code string) int {
	switch code {
	case CodeBadRequest:
		return http.StatusBadRequest
	case CodeAuth:
		return http.StatusUnauthorized
	case CodeNotFound:
		return http.StatusNotFound
	case CodeBusy:
		return http.StatusConflict
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeBadArtifact:
		return http.StatusUnprocessableEntity
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Error is the body of every error response, and the last event of a
// failed step.
type Error struct {
	Message string `json:"error"`
	Code    string `json:"code"`
	Holder  *Lock  `json:"holder,omitempty"` // with CodeBusy: who holds the instance
}

func (e *Error) Error() string { return e.Message }

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
	Drivers []string `json:"drivers"`
	Plugins []Plugin `json:"plugins,omitempty"`
}

// Plugin is a driver plugin the agent knows.
type Plugin struct {
	Name    string   `json:"name"`
	Path    string   `json:"path"`
	Running bool     `json:"running"`
	Steps   []string `json:"steps,omitempty"`
}

// Services answers GET /v1/services.
type Services struct {
	Services []Service `json:"services"`
}

// Service is one service of the agent's config.
type Service struct {
	Name      string   `json:"name"`
	Driver    string   `json:"driver"`
	Context   string   `json:"context"`
	Instances []string `json:"instances"`
}

// StepRequest is the body of a step call.
//
// Run identifies the client run the step belongs to. The first mutating step
// of a run on a service takes the service's lease for that run; steps of
// other runs get 409 until the run releases it (DELETE
// /v1/services/:service/lease/:run) or leaves it idle for LeaseTTL.
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

// History answers GET /v1/history.
type History struct {
	Entries []HistoryEntry `json:"entries"`
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
}
