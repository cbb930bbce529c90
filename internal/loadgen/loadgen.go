// Package loadgen requests one URL continuously, on loopback, and counts
// what fails: the load that baepo's zero-downtime benchmarks deploy under.
// A request fails when it is refused, reset, times out or answers anything
// but 2xx; the report gives the failures by kind, the latency percentiles
// of the answers, and when each answer body was first seen, so that a
// benchmark can tell when a new version began to serve.
//
// It is bounded in count and time, so a benchmark that forgets to stop it
// does not load the machine for good.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options says what to request and how hard.
type Options struct {
	URL         string        // requested by every worker, with GET
	Workers     int           // requests in flight at once (default 4)
	Interval    time.Duration // pause between one worker's requests (default 10ms)
	Timeout     time.Duration // a slower request counts as failed (default 2s)
	MaxRequests int           // stop after this many requests (default 1,000,000)
	MaxDuration time.Duration // stop after this long (default 10m)
}

// Failure kinds.
const (
	Refused = "refused" // connection refused: nothing listened
	Reset   = "reset"   // the connection closed under the request
	Timeout = "timeout" // no answer within Options.Timeout
	Status  = "status"  // an answer other than 2xx (404 while undeployed, 502/503 from a balancer)
	Other   = "other"
)

// Failure is one failed request.
type Failure struct {
	At   time.Time
	Kind string
	What string // the error, or the status line
}

// Report is what a load saw.
type Report struct {
	Requests int
	Failed   int
	ByKind   map[string]int
	Examples []Failure            // the first few failures
	First    map[string]time.Time // each 2xx body, trimmed, to when it first arrived
	Bodies   map[string]int       // each 2xx body, trimmed, to how many answers carried it
	// Latencies of the requests that succeeded, sorted.
	Latencies []time.Duration
}

// Percentile returns the latency below which p (0 to 1) of the successful
// requests finished; 0 when none did.
func (r Report) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(p * float64(len(r.Latencies)-1))
	return r.Latencies[i]
}

// String is one line: requests, failures by kind, latency percentiles.
func (r Report) String() string {
	var kinds []string
	for _, k := range []string{Refused, Reset, Timeout, Status, Other} {
		if n := r.ByKind[k]; n > 0 {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
	}
	failed := fmt.Sprint(r.Failed)
	if len(kinds) > 0 {
		failed += " (" + strings.Join(kinds, ", ") + ")"
	}
	return fmt.Sprintf("%d requests, %s failed, latency p50 %s p99 %s max %s", r.Requests, failed,
		r.Percentile(0.5).Round(time.Microsecond), r.Percentile(0.99).Round(time.Microsecond), r.Percentile(1).Round(time.Microsecond))
}

const maxExamples = 10

// Load is a running load; Stop ends it.
type Load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu  sync.Mutex
	rep Report
	n   int // requests started, against MaxRequests
	max int
}

// Start begins requesting opts.URL and returns at once. The load runs
// until Stop, until ctx is done, or until its bounds are reached.
func Start(ctx context.Context, opts Options) (*Load, error) {
	if !strings.HasPrefix(opts.URL, "http://") {
		return nil, fmt.Errorf("loadgen: URL %q must be http://", opts.URL)
	}
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Millisecond
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.MaxRequests <= 0 {
		opts.MaxRequests = 1_000_000
	}
	if opts.MaxDuration <= 0 {
		opts.MaxDuration = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, opts.MaxDuration)
	l := &Load{cancel: cancel, max: opts.MaxRequests, rep: Report{ByKind: map[string]int{}, First: map[string]time.Time{}, Bodies: map[string]int{}}}
	// Keep-alive connections, as a real client of the app would hold; one
	// per worker.
	client := &http.Client{
		Timeout:   opts.Timeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: opts.Workers, DisableCompression: true},
	}
	for range opts.Workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			t := time.NewTicker(opts.Interval)
			defer t.Stop()
			for l.take() {
				l.once(ctx, client, opts.URL)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	go func() {
		<-ctx.Done()
		client.CloseIdleConnections()
	}()
	return l, nil
}

// take reports whether another request may start.
func (l *Load) take() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n >= l.max {
		return false
	}
	l.n++
	return true
}

// once makes one request and records it. A request cut short by the end
// of the load is not counted.
func (l *Load) once(ctx context.Context, client *http.Client, url string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	start := time.Now()
	resp, err := client.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
	took := time.Since(start)
	if ctx.Err() != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rep.Requests++
	switch {
	case err != nil:
		l.fail(start, kindOf(err), err.Error())
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		l.fail(start, Status, resp.Status)
	default:
		l.rep.Latencies = append(l.rep.Latencies, took)
		b := strings.TrimSpace(string(body))
		l.rep.Bodies[b]++
		if _, ok := l.rep.First[b]; !ok {
			l.rep.First[b] = start.Add(took) // when the answer arrived
		}
	}
}

func (l *Load) fail(at time.Time, kind, what string) {
	l.rep.Failed++
	l.rep.ByKind[kind]++
	if len(l.rep.Examples) < maxExamples {
		l.rep.Examples = append(l.rep.Examples, Failure{At: at, Kind: kind, What: what})
	}
}

// kindOf sorts a transport error into a failure kind.
func kindOf(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return Reset
	case errors.As(err, &ne) && ne.Timeout():
		return Timeout
	}
	return Other
}

// Stop ends the load, waits for its requests and returns what it saw.
func (l *Load) Stop() Report {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	rep := l.rep
	rep.Latencies = slices.Clone(rep.Latencies)
	slices.Sort(rep.Latencies)
	return rep
}

// Probe starts the light load a test watches an app with while it deploys:
// one request at a time, every 10 ms, each allowed 5 s.
func Probe(url string) (*Load, error) {
	return Start(context.Background(), Options{URL: url, Workers: 1, Interval: 10 * time.Millisecond, Timeout: 5 * time.Second})
}
