package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/sdktest"
)

// fakeDriver is an in-memory driver: it keeps which instances run, records
// every call it gets, and does what its fields say.
type fakeDriver struct {
	err      error    // when set, every method fails with it
	progress []string // lines each streamed step reports before it returns
	// parallel makes the streamed steps report progress from one goroutine
	// per line, all at once.
	parallel bool
	// block makes every method wait for its ctx to be done; it then sends
	// the ctx to blocked and returns ctx.Err().
	block   bool
	entered chan struct{}
	blocked chan context.Context

	mu      sync.Mutex
	running map[string]int
	nextPID int
	calls   []call
}

// call is one call a fakeDriver got, with its arguments.
type call struct {
	Method string
	Inst   sdk.Instance
	Rel    sdk.Release
	Step   string
	Args   map[string]string
	Lines  int
}

func newFake() *fakeDriver {
	return &fakeDriver{
		entered: make(chan struct{}, 1),
		blocked: make(chan context.Context, 1),
		running: map[string]int{},
		nextPID: 4711,
	}
}

var fakeDescription = sdk.Description{
	Name:    "fake",
	Version: "1.2.3",
	Config: []sdk.ConfigField{
		{Name: "home", Doc: "where the server is installed", Required: true},
		{Name: "jvm_opts", Doc: "extra JVM options"},
	},
	Steps: []sdk.StepInfo{
		{Name: "reload", Doc: "reload the webapp; echoes its args"},
		{Name: "thread-dump", Doc: "write a thread dump to the log"},
		{Name: "retire", Doc: "remove what hot installs left running"},
	},
	HotDeploy: true,
}

const fakeLog = "line 1\nline 2\nline 3\nline 4\n"

func key(inst sdk.Instance) string { return inst.Service + "/" + inst.Name }

// enter records c and does what the driver's fields say every method does.
func (d *fakeDriver) enter(ctx context.Context, c call) error {
	d.mu.Lock()
	d.calls = append(d.calls, c)
	d.mu.Unlock()
	if d.block {
		d.entered <- struct{}{}
		<-ctx.Done()
		d.blocked <- ctx
		return ctx.Err()
	}
	return d.err
}

// report reports the driver's progress lines as a streamed step.
func (d *fakeDriver) report(ctx context.Context) {
	if !d.parallel {
		for _, msg := range d.progress {
			sdk.Progress(ctx, msg)
		}
		return
	}
	var wg sync.WaitGroup
	for _, msg := range d.progress {
		wg.Go(func() { sdk.Progress(ctx, msg) })
	}
	wg.Wait()
}

func (d *fakeDriver) Describe(ctx context.Context) (sdk.Description, error) {
	if err := d.enter(ctx, call{Method: "Describe"}); err != nil {
		return sdk.Description{}, err
	}
	return fakeDescription, nil
}

func (d *fakeDriver) Validate(ctx context.Context, inst sdk.Instance) error {
	if err := d.enter(ctx, call{Method: "Validate", Inst: inst}); err != nil {
		return err
	}
	if inst.Config["home"] == "" {
		return errors.New("home: required")
	}
	return nil
}

func (d *fakeDriver) Start(ctx context.Context, inst sdk.Instance) (sdk.Result, error) {
	if err := d.enter(ctx, call{Method: "Start", Inst: inst}); err != nil {
		return sdk.Result{}, err
	}
	d.report(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	if pid, ok := d.running[key(inst)]; ok {
		return sdk.Result{Message: "already running", Output: map[string]string{"pid": strconv.Itoa(pid)}}, nil
	}
	d.nextPID++
	d.running[key(inst)] = d.nextPID
	return sdk.Result{Message: "started", Output: map[string]string{"pid": strconv.Itoa(d.nextPID)}}, nil
}

func (d *fakeDriver) Stop(ctx context.Context, inst sdk.Instance) (sdk.Result, error) {
	if err := d.enter(ctx, call{Method: "Stop", Inst: inst}); err != nil {
		return sdk.Result{}, err
	}
	d.report(ctx)
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.running[key(inst)]; !ok {
		return sdk.Result{Message: "already stopped"}, nil
	}
	delete(d.running, key(inst))
	return sdk.Result{Message: "stopped"}, nil
}

func (d *fakeDriver) Install(ctx context.Context, inst sdk.Instance, rel sdk.Release) (sdk.Result, error) {
	if err := d.enter(ctx, call{Method: "Install", Inst: inst, Rel: rel}); err != nil {
		return sdk.Result{}, err
	}
	d.report(ctx)
	return sdk.Result{Message: "installed " + rel.ID, Output: map[string]string{"artifact": rel.Name}}, nil
}

func (d *fakeDriver) Status(ctx context.Context, inst sdk.Instance) (sdk.Status, error) {
	if err := d.enter(ctx, call{Method: "Status", Inst: inst}); err != nil {
		return sdk.Status{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if pid, ok := d.running[key(inst)]; ok {
		return sdk.Status{Running: true, PID: pid, Message: "running"}, nil
	}
	return sdk.Status{Message: "stopped"}, nil
}

func (d *fakeDriver) Logs(ctx context.Context, inst sdk.Instance, lines int) (string, error) {
	if err := d.enter(ctx, call{Method: "Logs", Inst: inst, Lines: lines}); err != nil {
		return "", err
	}
	all := strings.SplitAfter(fakeLog, "\n")
	all = all[:len(all)-1] // the empty string after the last newline
	return strings.Join(all[max(0, len(all)-lines):], ""), nil
}

func (d *fakeDriver) Step(ctx context.Context, inst sdk.Instance, name string, args map[string]string) (sdk.Result, error) {
	if err := d.enter(ctx, call{Method: "Step", Inst: inst, Step: name, Args: args}); err != nil {
		return sdk.Result{}, err
	}
	switch name {
	case "reload":
		d.report(ctx)
		return sdk.Result{Message: "reloaded " + key(inst), Output: args}, nil
	case "thread-dump":
		return sdk.Result{Message: "thread dump written"}, nil
	}
	return sdk.Result{}, fmt.Errorf("fake: %w %q", sdk.ErrUnknownStep, name)
}

var _ sdk.Driver = (*fakeDriver)(nil)

var inst = sdk.Instance{
	Service:  "shop",
	Name:     "a1",
	Port:     18080,
	Context:  "/shop",
	Config:   map[string]string{"home": "/opt/fake", "jvm_opts": "-Xmx512m -Dfile.encoding=UTF-8", "ünïcode": "✓"},
	StateDir: "/var/lib/baepo/instances/shop/a1",
	Mode:     "hot",
}

var rel = sdk.Release{
	ID:       "20250101-120000-ab12",
	Artifact: "/var/lib/baepo/releases/shop/20250101-120000-ab12/shop.war",
	Name:     "shop.war",
	SHA256:   strings.Repeat("ab", 32),
	Hot:      true,
}

// TestRoundTrip calls every method through gRPC and checks what the driver
// got and what the caller gets back.
func TestRoundTrip(t *testing.T) {
	ctx := t.Context()
	d := newFake()
	drv := sdktest.Run(t, d)

	desc, err := drv.Describe(ctx)
	if err != nil || !reflect.DeepEqual(desc, fakeDescription) {
		t.Errorf("Describe = %+v, %v; want %+v", desc, err, fakeDescription)
	}
	if err := drv.Validate(ctx, inst); err != nil {
		t.Errorf("Validate: %v", err)
	}

	results := []struct {
		name string
		call func() (sdk.Result, error)
		want sdk.Result
	}{
		{"Start", func() (sdk.Result, error) { return drv.Start(ctx, inst) }, sdk.Result{Message: "started", Output: map[string]string{"pid": "4712"}}},
		{"Start again", func() (sdk.Result, error) { return drv.Start(ctx, inst) }, sdk.Result{Message: "already running", Output: map[string]string{"pid": "4712"}}},
		{"Install", func() (sdk.Result, error) { return drv.Install(ctx, inst, rel) }, sdk.Result{Message: "installed " + rel.ID, Output: map[string]string{"artifact": "shop.war"}}},
		{"Step", func() (sdk.Result, error) {
			return drv.Step(ctx, inst, "reload", map[string]string{"path": "/shop", "mode": "hard", "empty": ""})
		}, sdk.Result{Message: "reloaded shop/a1", Output: map[string]string{"path": "/shop", "mode": "hard", "empty": ""}}},
		{"Step without args or output", func() (sdk.Result, error) { return drv.Step(ctx, inst, "thread-dump", nil) }, sdk.Result{Message: "thread dump written"}},
	}
	for _, r := range results {
		got, err := r.call()
		if err != nil || !reflect.DeepEqual(got, r.want) {
			t.Errorf("%s = %+v, %v; want %+v", r.name, got, err, r.want)
		}
	}

	st, err := drv.Status(ctx, inst)
	if want := (sdk.Status{Running: true, PID: 4712, Message: "running"}); err != nil || st != want {
		t.Errorf("Status = %+v, %v; want %+v", st, err, want)
	}
	logs, err := drv.Logs(ctx, inst, 2)
	if want := "line 3\nline 4\n"; err != nil || logs != want {
		t.Errorf("Logs(2) = %q, %v; want %q", logs, err, want)
	}
	if res, err := drv.Stop(ctx, inst); err != nil || res.Message != "stopped" {
		t.Errorf("Stop = %+v, %v", res, err)
	}
	st, err = drv.Status(ctx, inst)
	if want := (sdk.Status{Message: "stopped"}); err != nil || st != want {
		t.Errorf("Status after Stop = %+v, %v; want %+v", st, err, want)
	}

	// The driver got every argument as sent, config maps included.
	want := []call{
		{Method: "Describe"},
		{Method: "Validate", Inst: inst},
		{Method: "Start", Inst: inst},
		{Method: "Start", Inst: inst},
		{Method: "Install", Inst: inst, Rel: rel},
		{Method: "Step", Inst: inst, Step: "reload", Args: map[string]string{"path": "/shop", "mode": "hard", "empty": ""}},
		{Method: "Step", Inst: inst, Step: "thread-dump"},
		{Method: "Status", Inst: inst},
		{Method: "Logs", Inst: inst, Lines: 2},
		{Method: "Stop", Inst: inst},
		{Method: "Status", Inst: inst},
	}
	if !reflect.DeepEqual(d.calls, want) {
		t.Errorf("driver got\n%+v\nwant\n%+v", d.calls, want)
	}
}

// TestZeroValues checks that zero values cross as zero values, and empty
// maps as nil.
func TestZeroValues(t *testing.T) {
	d := newFake()
	drv := sdktest.Run(t, d)
	empty := sdk.Instance{Config: map[string]string{}}
	if _, err := drv.Install(t.Context(), empty, sdk.Release{}); err != nil {
		t.Fatal(err)
	}
	if _, err := drv.Step(t.Context(), sdk.Instance{}, "reload", map[string]string{}); err != nil {
		t.Fatal(err)
	}
	want := []call{
		{Method: "Install"},
		{Method: "Step", Step: "reload"},
	}
	if !reflect.DeepEqual(d.calls, want) {
		t.Errorf("driver got %+v, want %+v", d.calls, want)
	}
}

// streamed are the methods that stream progress, called on inst.
var streamed = []struct {
	name string
	call func(context.Context, sdk.Driver) (sdk.Result, error)
}{
	{"Start", func(ctx context.Context, d sdk.Driver) (sdk.Result, error) { return d.Start(ctx, inst) }},
	{"Stop", func(ctx context.Context, d sdk.Driver) (sdk.Result, error) { return d.Stop(ctx, inst) }},
	{"Install", func(ctx context.Context, d sdk.Driver) (sdk.Result, error) { return d.Install(ctx, inst, rel) }},
	{"Step", func(ctx context.Context, d sdk.Driver) (sdk.Result, error) { return d.Step(ctx, inst, "reload", nil) }},
}

func TestProgress(t *testing.T) {
	var lines []string
	for i := range 500 {
		lines = append(lines, fmt.Sprintf("line %d: waiting for pid 4711 to exit", i))
	}
	lines = append(lines, "", "ünïcode ✓", "two\nlines")

	for _, m := range streamed {
		t.Run(m.name, func(t *testing.T) {
			d := newFake()
			d.progress = lines
			drv := sdktest.Run(t, d)
			var got []string
			ctx := sdk.WithProgress(t.Context(), func(msg string) { got = append(got, msg) })
			if _, err := m.call(ctx, drv); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, lines) {
				t.Errorf("got %d lines, want %d in order:\n%q", len(got), len(lines), got)
			}
		})
	}

	t.Run("without a progress func", func(t *testing.T) {
		d := newFake()
		d.progress = lines
		if _, err := sdktest.Run(t, d).Start(t.Context(), inst); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("from many goroutines", func(t *testing.T) {
		d := newFake()
		d.progress = lines
		d.parallel = true
		drv := sdktest.Run(t, d)
		var got []string
		ctx := sdk.WithProgress(t.Context(), func(msg string) { got = append(got, msg) })
		if _, err := drv.Start(ctx, inst); err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, l := range lines {
			count[l]++
		}
		for _, l := range got {
			count[l]--
		}
		for l, n := range count {
			if n != 0 {
				t.Errorf("line %q: %d more sent than received", l, n)
			}
		}
	})
}

// TestErrors checks that a driver's error reaches the caller with its text
// unchanged, wrapping sdk.ErrUnknownStep exactly when the driver's did.
func TestErrors(t *testing.T) {
	errs := []error{
		errors.New("catalina_base: /opt/x: no such directory"),
		errors.New("stop instance shop/a1: wait for pid 4711: timeout after 30s\nsecond line: ünïcode ✓"),
		fmt.Errorf("jetty: %w: %q", sdk.ErrUnknownStep, "warm-up"),
		sdk.ErrUnknownStep,
		fmt.Errorf("wraps a cancel: %w", context.Canceled),
	}
	methods := map[string]func(context.Context, sdk.Driver) error{
		"Describe": func(ctx context.Context, d sdk.Driver) error { _, err := d.Describe(ctx); return err },
		"Validate": func(ctx context.Context, d sdk.Driver) error { return d.Validate(ctx, inst) },
		"Status":   func(ctx context.Context, d sdk.Driver) error { _, err := d.Status(ctx, inst); return err },
		"Logs":     func(ctx context.Context, d sdk.Driver) error { _, err := d.Logs(ctx, inst, 10); return err },
	}
	for _, m := range streamed {
		methods[m.name] = func(ctx context.Context, d sdk.Driver) error { _, err := m.call(ctx, d); return err }
	}

	for name, call := range methods {
		for _, want := range errs {
			t.Run(name+"/"+want.Error(), func(t *testing.T) {
				d := newFake()
				d.err = want
				d.progress = []string{"before the error"}
				err := call(t.Context(), sdktest.Run(t, d))
				if err == nil {
					t.Fatal("no error")
				}
				if err.Error() != want.Error() {
					t.Errorf("error %q, want %q", err, want)
				}
				if got, want := errors.Is(err, sdk.ErrUnknownStep), errors.Is(want, sdk.ErrUnknownStep); got != want {
					t.Errorf("errors.Is(%q, sdk.ErrUnknownStep) = %v, want %v", err, got, want)
				}
			})
		}
	}

	t.Run("undeclared step", func(t *testing.T) {
		_, err := sdktest.Run(t, newFake()).Step(t.Context(), inst, "warm-up", map[string]string{"a": "b"})
		if !errors.Is(err, sdk.ErrUnknownStep) || err.Error() != `fake: unknown step "warm-up"` {
			t.Errorf("error %q, want one wrapping sdk.ErrUnknownStep", err)
		}
	})
}

func TestNoSteps(t *testing.T) {
	_, err := sdk.NoSteps{}.Step(t.Context(), inst, "warm-up", nil)
	if want := `step "warm-up" on instance shop/a1: unknown step (the driver has no custom steps)`; !errors.Is(err, sdk.ErrUnknownStep) || err == nil || err.Error() != want {
		t.Errorf("error %v, want %q wrapping sdk.ErrUnknownStep", err, want)
	}
}

// TestContext checks that cancelling the caller's ctx, or its deadline,
// ends the call at once and reaches the ctx the driver got.
func TestContext(t *testing.T) {
	const timeout = 10 * time.Second
	methods := []struct {
		name string
		call func(context.Context, sdk.Driver) error
	}{
		{"Start", func(ctx context.Context, d sdk.Driver) error { _, err := d.Start(ctx, inst); return err }},
		{"Status", func(ctx context.Context, d sdk.Driver) error { _, err := d.Status(ctx, inst); return err }},
	}
	for _, m := range methods {
		t.Run(m.name+"/cancel", func(t *testing.T) {
			d := newFake()
			d.block = true
			drv := sdktest.Run(t, d)
			ctx, cancel := context.WithCancel(t.Context())
			go func() {
				<-d.entered
				cancel()
			}()
			err := m.call(ctx, drv)
			if !errors.Is(err, context.Canceled) {
				t.Errorf("error %v, want one wrapping context.Canceled", err)
			}
			select {
			case dctx := <-d.blocked:
				if !errors.Is(dctx.Err(), context.Canceled) {
					t.Errorf("driver's ctx: %v, want context.Canceled", dctx.Err())
				}
			case <-time.After(timeout):
				t.Fatalf("driver's ctx not done %v after the caller's", timeout)
			}
		})

		t.Run(m.name+"/deadline", func(t *testing.T) {
			d := newFake()
			d.block = true
			drv := sdktest.Run(t, d)
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			want, _ := ctx.Deadline()
			err := m.call(ctx, drv)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v, want one wrapping context.DeadlineExceeded", err)
			}
			select {
			case dctx := <-d.blocked:
				// The plugin's own timer and the caller's cancel of the
				// call race: either ends the driver's ctx.
				if dctx.Err() == nil {
					t.Errorf("driver's ctx not done")
				}
				got, ok := dctx.Deadline()
				if !ok || got.Sub(want).Abs() > time.Second {
					t.Errorf("driver's deadline %v (%v), want about %v", got, ok, want)
				}
			case <-time.After(timeout):
				t.Fatalf("driver's ctx not done %v after the caller's deadline", timeout)
			}
		})
	}
}

// TestConcurrent makes calls from many goroutines at once through one
// client; run it with -race.
func TestConcurrent(t *testing.T) {
	drv := sdktest.Run(t, newFake())
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				args := map[string]string{"g": strconv.Itoa(g), "i": strconv.Itoa(i)}
				var progress []string
				ctx := sdk.WithProgress(t.Context(), func(msg string) { progress = append(progress, msg) })
				res, err := drv.Step(ctx, inst, "reload", args)
				if err != nil || !reflect.DeepEqual(res.Output, args) {
					t.Errorf("Step %v = %+v, %v", args, res, err)
					return
				}
				if _, err := drv.Status(t.Context(), inst); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestConformance(t *testing.T) {
	sdktest.Conformance(t, newFake(), inst)
}

func BenchmarkStatus(b *testing.B) {
	drv := sdktest.Run(b, newFake())
	ctx := b.Context()
	for b.Loop() {
		if _, err := drv.Status(ctx, inst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStep is a streamed call: a result and the end of the stream.
func BenchmarkStep(b *testing.B) {
	drv := sdktest.Run(b, newFake())
	ctx := b.Context()
	for b.Loop() {
		if _, err := drv.Step(ctx, inst, "thread-dump", nil); err != nil {
			b.Fatal(err)
		}
	}
}
