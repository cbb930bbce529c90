package engine

import (
	"strings"
	"time"
)

// Step and instance results as they appear in logs and reports.
const (
	ResultOK          = "ok"          // the step or instance succeeded
	ResultFailed      = "failed"      // the step or instance failed
	ResultSkipped     = "skipped"     // never started: failure budget spent, a canary failed or run interrupted
	ResultPlanned     = "planned"     // dry run: recorded, not sent
	ResultRolledBack  = "rolled-back" // instance failed, then its rollback succeeded
	ResultInterrupted = "interrupted" // the run was cancelled while the instance ran
)

// Outcomes of a whole run.
const (
	OutcomeSucceeded   = "succeeded"
	OutcomeRolledBack  = "failed-rolled-back"
	OutcomeUnhealthy   = "failed-unhealthy"
	OutcomeUnreachable = "unreachable"      // failed before anything changed: agents unreachable or busy
	OutcomeUnchanged   = "failed-unchanged" // failed before anything changed: refused steps, flow errors
	OutcomeInterrupted = "interrupted"
)

// Report is the record of one run: what ran where, with what result. The
// client prints it as a summary table and writes it as JSON or JUnit.
type Report struct {
	Template  string           `json:"template"`
	Params    map[string]any   `json:"params"`
	Servers   []string         `json:"servers"`
	DryRun    bool             `json:"dry_run,omitempty"`
	Build     Build            `json:"build"`
	Batch     int              `json:"batch"`
	MaxFail   int              `json:"max_failures"`
	Canary    int              `json:"canary"` // how many of the instances ran first, as canaries
	Started   time.Time        `json:"started"`
	Duration  time.Duration    `json:"duration_ns"`
	Outcome   string           `json:"outcome"`
	ExitCode  int              `json:"exit_code"`
	Error     string           `json:"error,omitempty"`
	Hooks     []HookReport     `json:"hooks,omitempty"` // the template's before and after, those that ran
	Instances []InstanceReport `json:"instances"`
	// Planned are the steps a dry run planned outside any instance's each
	// and rollback: an http.post in targets.
	Planned []StepRecord `json:"planned,omitempty"`
}

// HookReport is what a run-level hook of the template (before, after) did.
type HookReport struct {
	Name     string        `json:"hook"`
	Result   string        `json:"result"` // ok or failed
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Counts are how many instances of a run ended with each result.
type Counts struct {
	OK, Failed, RolledBack, Skipped, Interrupted int
}

// Counts counts the instances by result.
func (r *Report) Counts() Counts {
	var c Counts
	for _, ir := range r.Instances {
		switch ir.Result {
		case ResultOK:
			c.OK++
		case ResultFailed:
			c.Failed++
		case ResultRolledBack:
			c.RolledBack++
		case ResultSkipped:
			c.Skipped++
		case ResultInterrupted:
			c.Interrupted++
		}
	}
	return c
}

// InstanceReport is what happened to one instance.
type InstanceReport struct {
	Instance
	Batch    int           `json:"batch"`
	Canary   bool          `json:"canary,omitempty"` // one of the first instances, whose failure stops the run
	Result   string        `json:"result"`
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	Steps    []StepRecord  `json:"steps"`

	unreached  bool // the step that failed it met an agent that could not be reached or was busy
	notHealthy bool // the flow judged it not healthy (unhealthy())
}

// addError adds msg to why the instance failed. The first line of Error
// stays the whole story in one line (each message's first line, joined by
// "; "); the lines after a message's first (an app server's log tail)
// follow it, in order.
func (r *InstanceReport) addError(msg string) {
	head, detail, _ := strings.Cut(r.Error, "\n")
	msgHead, msgDetail, _ := strings.Cut(msg, "\n")
	if head != "" {
		msgHead = head + "; " + msgHead
	}
	lines := []string{msgHead}
	for _, d := range []string{detail, msgDetail} {
		if d != "" {
			lines = append(lines, d)
		}
	}
	r.Error = strings.Join(lines, "\n")
}

// StepRecord is one step of one instance.
type StepRecord struct {
	Name     string         `json:"step"`
	Phase    string         `json:"phase"` // "each" or "rollback"; in a dry run also "plan" (PhasePlan) and "targets" (Report.Planned)
	Args     map[string]any `json:"args,omitempty"`
	Result   string         `json:"result"`
	Message  string         `json:"message,omitempty"`
	Started  time.Time      `json:"started"`
	Duration time.Duration  `json:"duration_ns"`
	// Output is what a step that only reads (status, logs: engine/step's
	// DryRun) returned, so that reports keep it.
	Output map[string]any `json:"output,omitempty"`
}

// Build identifies the CI build that started a run, as the caller knows it.
// Flows read it as ctx.build; each step carries it to the target (agents
// record it in their history).
type Build struct {
	Tag    string `json:"tag,omitempty"`
	URL    string `json:"url,omitempty"`
	Job    string `json:"job,omitempty"`
	Number string `json:"number,omitempty"`
}

// Failed reports whether the instance failed in any way.
func (r InstanceReport) Failed() bool {
	return r.Result == ResultFailed || r.Result == ResultRolledBack || r.Result == ResultInterrupted
}
