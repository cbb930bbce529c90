package agent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/sdk"
)

// healthResult is the last health check of an instance.
type healthResult struct {
	Result string // "ok" or "failing: <reason>"
	At     time.Time
}

// logTailLines is how much of the instance log a failed health check shows.
const logTailLines = 30

// health probes http://127.0.0.1:<port><path> every interval until it
// answers with the expected status (and body), or the timeout ends. On
// failure the error carries the tail of the instance's log, so the Jenkins
// console shows why the app server did not come up.
func (a *Agent) health(ctx context.Context, d sdk.Driver, inst *instance, args map[string]any) (api.StepResult, error) {
	h := inst.svc.cfg.Health
	timeout := time.Duration(h.Timeout)
	if v, ok := args["timeout"]; ok {
		t, err := argDuration(v)
		if err != nil {
			return api.StepResult{}, fmt.Errorf("health %s: timeout: %w", inst, err)
		}
		timeout = t
	}
	url := "http://127.0.0.1:" + strconv.Itoa(inst.spec.Port) + h.Path
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	tick := time.NewTicker(time.Duration(h.Interval))
	defer tick.Stop()
	lastReport := start
	var last string
	for attempt := 1; ; attempt++ {
		t0 := time.Now()
		ok, why := a.probe(ctx, url, h)
		a.metrics.healthSeconds.Observe(time.Since(t0).Seconds())
		if ok {
			inst.health.Store(&healthResult{Result: "ok", At: time.Now().UTC()})
			return api.StepResult{
				Message: fmt.Sprintf("healthy after %s (%d probes)", time.Since(start).Round(time.Millisecond), attempt),
				Output:  map[string]any{"url": url, "probes": attempt},
			}, nil
		}
		if ctx.Err() != nil && last != "" {
			break // the probe the deadline cut short says less than the one before
		}
		last = why
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
	inst.health.Store(&healthResult{Result: "failing: " + last, At: time.Now().UTC()})
	msg := fmt.Sprintf("health %s: %s did not answer %d within %s (last: %s)", inst, url, h.ExpectStatus, timeout, last)
	if ctx.Err() != nil && context.Cause(ctx) != context.DeadlineExceeded {
		msg = fmt.Sprintf("health %s: interrupted (last: %s)", inst, last)
	}
	logCtx, cancelLog := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancelLog()
	if tail, err := d.Logs(logCtx, inst.spec, logTailLines); err == nil && strings.TrimSpace(tail) != "" {
		msg += "\n--- last " + strconv.Itoa(logTailLines) + " lines of the " + inst.String() + " log ---\n" + strings.TrimRight(tail, "\n")
	}
	return api.StepResult{}, fmt.Errorf("%s", msg)
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

// argDuration reads a duration argument: "90s" or a number of seconds.
func argDuration(v any) (time.Duration, error) {
	switch v := v.(type) {
	case string:
		return time.ParseDuration(v)
	case float64:
		return time.Duration(v * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("%v is not a duration", v)
}
