package agent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/sdk"
)

// healthResult is one health check of an instance.
type healthResult struct {
	Result  string // "ok" or "failing: <reason>"
	At      time.Time
	Release string // the release current when the check began; "" when none
}

// healthState is what the agent knows of an instance's health. A check
// speaks only of the process and release it probed: a step that stops or
// starts the instance or changes its release forgets the last check, and a
// check that ran across such a step is not taken as the instance's health.
type healthState struct {
	mu     sync.Mutex
	last   *healthResult // the last check since the last forget; nil when none
	passed *healthResult // the last check that passed, forgotten by nothing
	since  string        // the step that last forgot; "" when none has since the agent started
	epoch  int           // how many times a step forgot
}

// forget drops the last check, because step changes what runs.
func (h *healthState) forget(step string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last, h.since = nil, step
	h.epoch++
}

// begin returns the epoch of a check that starts now, for record.
func (h *healthState) begin() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.epoch
}

// record keeps the result of a check that began in epoch: as the last check
// unless a step forgot since, and as the last pass if it passed.
func (h *healthState) record(epoch int, r healthResult) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Result == "ok" {
		h.passed = &r
	}
	if epoch == h.epoch {
		h.last = &r
	}
}

// report adds the instance's health to its status output, and says it in
// one phrase for the status message. Health is "ok" only for an instance
// that runs and passed a check since it last started or changed release.
func (h *healthState) report(running bool, out map[string]any) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	health := ""
	switch {
	case !running:
		health = "unknown: not running"
	case h.last != nil:
		health = h.last.Result
		out["health_at"] = h.last.At.Format(time.RFC3339)
		out["health_release"] = h.last.Release
	case h.since == "":
		health = "not checked since the agent started"
	default:
		health = "not checked since " + h.since
	}
	out["health"] = health
	if p := h.passed; p != nil {
		out["health_passed_at"] = p.At.Format(time.RFC3339)
		out["health_passed_release"] = p.Release
		if health != "ok" && p.Release != "" {
			health += " (last passed " + p.At.Format(time.RFC3339) + " on release " + p.Release + ")"
		}
	}
	return health
}

// logTailLines is how much of the instance log a failed health check shows.
const logTailLines = 30

// processCheckEvery is how often, while its probes fail, a health check
// asks the driver whether the instance's process still runs.
const processCheckEvery = 500 * time.Millisecond

// health probes http://127.0.0.1:<port><path> every interval until it
// answers with the expected status (and body), or the timeout ends. It
// watches the instance's process as well: an instance that does not run
// fails at once, and so does one whose process exits during the wait. On
// failure the error carries the tail of the instance's log, so the Jenkins
// console shows why the app server did not come up.
func (a *Agent) health(ctx context.Context, d sdk.Driver, inst *instance, args map[string]any) (api.StepResult, error) {
	h := inst.svc.cfg.Health
	timeout, err := healthTimeout(args, time.Duration(h.Timeout))
	if err != nil {
		return api.StepResult{}, err
	}
	epoch := inst.health.begin()
	release, _ := currentPair(inst.releases)
	if down := notRunning(ctx, d, inst); down != "" {
		inst.health.record(epoch, healthResult{Result: "failing: not running", At: time.Now().UTC(), Release: release})
		return api.StepResult{}, fmt.Errorf("health %s: the instance does not run (%s): start it first", inst, down)
	}
	url := "http://127.0.0.1:" + strconv.Itoa(inst.spec.Port) + h.Path
	sdk.Progress(ctx, fmt.Sprintf("waiting up to %s for %s to answer %d", timeout, url, h.ExpectStatus))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	tick := time.NewTicker(time.Duration(h.Interval))
	defer tick.Stop()
	lastReport, lastCheck := start, start
	var last, exited string
	for attempt := 1; ; attempt++ {
		t0 := time.Now()
		ok, why := a.probe(ctx, url, h)
		a.metrics.healthSeconds.Observe(time.Since(t0).Seconds())
		if ok {
			inst.health.record(epoch, healthResult{Result: "ok", At: time.Now().UTC(), Release: release})
			return api.StepResult{
				Message: fmt.Sprintf("healthy after %s (%d probes)", time.Since(start).Round(time.Millisecond), attempt),
				Output:  map[string]any{"url": url, "probes": attempt},
			}, nil
		}
		if ctx.Err() != nil && last != "" {
			break // the probe the deadline cut short says less than the one before
		}
		last = why
		if time.Since(lastCheck) >= processCheckEvery {
			lastCheck = time.Now()
			if exited = notRunning(ctx, d, inst); exited != "" {
				break
			}
		}
		if time.Since(lastReport) >= 5*time.Second {
			sdk.Progress(ctx, fmt.Sprintf("waiting for %s: %s", url, why))
			lastReport = time.Now()
		}
		select {
		case <-tick.C:
			continue
		case <-ctx.Done():
		}
		break
	}
	result := "failing: " + last
	msg := fmt.Sprintf("health %s: %s did not answer %d within %s (last: %s)", inst, url, h.ExpectStatus, timeout, last)
	switch {
	case exited != "":
		result = "failing: process exited during health check"
		msg = fmt.Sprintf("health %s: process exited during health check after %s: %s (last probe: %s)", inst, time.Since(start).Round(time.Millisecond), exited, last)
	case ctx.Err() != nil && context.Cause(ctx) != context.DeadlineExceeded:
		msg = fmt.Sprintf("health %s: interrupted (last: %s)", inst, last)
	}
	inst.health.record(epoch, healthResult{Result: result, At: time.Now().UTC(), Release: release})
	logCtx, cancelLog := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancelLog()
	if tail, err := d.Logs(logCtx, inst.spec, logTailLines); err == nil && strings.TrimSpace(tail) != "" {
		msg += "\n--- last " + strconv.Itoa(logTailLines) + " lines of the " + inst.String() + " log ---\n" + strings.TrimRight(tail, "\n")
	}
	return api.StepResult{}, fmt.Errorf("%s", msg)
}

// notRunning asks the driver whether inst's process runs: "" when it does
// or the driver cannot tell, else the driver's word for it ("not running").
func notRunning(ctx context.Context, d sdk.Driver, inst *instance) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := d.Status(ctx, inst.spec)
	if err != nil || st.Running {
		return ""
	}
	if st.Message == "" {
		return "not running"
	}
	return st.Message
}

// probe makes one request; it reports whether it passed, and why not.
func (a *Agent) probe(ctx context.Context, url string, h HealthConfig) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := a.client.Do(req)
	if err != nil {
		if strings.Contains(err.Error(), "connection refused") {
			return false, "connection refused"
		}
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != h.ExpectStatus {
		return false, "HTTP " + strconv.Itoa(resp.StatusCode)
	}
	if h.ExpectBody != "" && !strings.Contains(string(body), h.ExpectBody) {
		return false, fmt.Sprintf("HTTP %d without %q in the body", resp.StatusCode, h.ExpectBody)
	}
	return true, ""
}

// maxHealthTimeout bounds the timeout argument of a health step: a day is
// far beyond any app server's start, and far below where seconds overflow a
// time.Duration.
const maxHealthTimeout = 24 * time.Hour

// healthTimeout reads the "timeout" argument of a health step, "90s" or a
// number of seconds, and def when there is none. Anything but a duration
// above 0 and up to maxHealthTimeout (negative, NaN, infinite, 1e300) is a
// bad request, refused before the step runs.
func healthTimeout(args map[string]any, def time.Duration) (time.Duration, error) {
	v, ok := args["timeout"]
	if !ok {
		return def, nil
	}
	var d time.Duration
	valid := false
	switch v := v.(type) {
	case string:
		p, err := time.ParseDuration(strings.TrimSpace(v))
		d, valid = p, err == nil
	case float64:
		// NaN fails both comparisons; the bound is checked in seconds,
		// before the conversion could overflow.
		if v > 0 && v <= maxHealthTimeout.Seconds() {
			d, valid = time.Duration(v*float64(time.Second)), true
		}
	}
	if !valid || d <= 0 || d > maxHealthTimeout {
		return 0, api.Errorf(api.CodeBadRequest, "health: args.timeout: %v is not a duration above 0 and up to 24h (give seconds, e.g. 90, or a string like \"90s\")", v)
	}
	return d, nil
}
