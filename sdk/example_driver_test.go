package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/baepo/baepo/sdk"
)

// Echo is a driver whose "app server" is a line in memory. A real driver
// runs a process per instance the same way: it reads its keys from
// inst.Config, reports progress while it waits, returns when ctx is done
// and keeps what it must remember in inst.StateDir.
type Echo struct {
	mu      sync.Mutex     // the agent calls for different instances at once
	running map[string]int // pid by service/name
	nextPID int
}

// NewEcho returns an Echo driver with nothing running.
func NewEcho() *Echo {
	return &Echo{running: map[string]int{}, nextPID: 100}
}

// Describe names the driver, its one config key and its one step.
func (e *Echo) Describe(ctx context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name:    "echo",
		Version: "0.1.0",
		Config: []sdk.ConfigField{
			{Name: "greeting", Doc: "what the instance says", Required: true},
		},
		Steps: []sdk.StepInfo{
			{Name: "say", Doc: "say args.text, or the greeting"},
		},
	}, nil
}

// Validate names the key that is wrong.
func (e *Echo) Validate(ctx context.Context, inst sdk.Instance) error {
	if inst.Config["greeting"] == "" {
		return errors.New("greeting: required")
	}
	return nil
}

// Start succeeds, and says so, when the instance already runs.
func (e *Echo) Start(ctx context.Context, inst sdk.Instance) (sdk.Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := inst.Service + "/" + inst.Name
	if pid, ok := e.running[key]; ok {
		return sdk.Result{Message: "already running, pid " + strconv.Itoa(pid)}, nil
	}
	sdk.Progress(ctx, "starting "+key+" on port "+strconv.Itoa(inst.Port))
	if err := ctx.Err(); err != nil { // a real driver waits in a select on ctx.Done()
		return sdk.Result{}, fmt.Errorf("start %s: %w", key, err)
	}
	e.nextPID++
	e.running[key] = e.nextPID
	return sdk.Result{
		Message: "started, pid " + strconv.Itoa(e.nextPID),
		Output:  map[string]string{"pid": strconv.Itoa(e.nextPID)},
	}, nil
}

// Stop succeeds, and says so, when the instance is already stopped.
func (e *Echo) Stop(ctx context.Context, inst sdk.Instance) (sdk.Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := inst.Service + "/" + inst.Name
	pid, ok := e.running[key]
	if !ok {
		return sdk.Result{Message: "already stopped"}, nil
	}
	sdk.Progress(ctx, "waiting for pid "+strconv.Itoa(pid)+" to exit")
	delete(e.running, key)
	return sdk.Result{Message: "stopped"}, nil
}

// Install would copy rel.Artifact into the instance's webapps.
func (e *Echo) Install(ctx context.Context, inst sdk.Instance, rel sdk.Release) (sdk.Result, error) {
	return sdk.Result{Message: "installed " + rel.Name + " as release " + rel.ID}, nil
}

// Status reports the pid of a running instance.
func (e *Echo) Status(ctx context.Context, inst sdk.Instance) (sdk.Status, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if pid, ok := e.running[inst.Service+"/"+inst.Name]; ok {
		return sdk.Status{Running: true, PID: pid}, nil
	}
	return sdk.Status{Message: "not running"}, nil
}

// Logs would return the last lines of the instance's log file.
func (e *Echo) Logs(ctx context.Context, inst sdk.Instance, lines int) (string, error) {
	return inst.Config["greeting"] + "\n", nil
}

// Step runs the declared step; any other name wraps sdk.ErrUnknownStep.
func (e *Echo) Step(ctx context.Context, inst sdk.Instance, name string, args map[string]string) (sdk.Result, error) {
	switch name {
	case "say":
		text := args["text"]
		if text == "" {
			text = inst.Config["greeting"]
		}
		return sdk.Result{Message: text, Output: map[string]string{"said": text}}, nil
	}
	return sdk.Result{}, fmt.Errorf("echo: %w %q", sdk.ErrUnknownStep, name)
}

var _ sdk.Driver = (*Echo)(nil)

// The agent calls a driver like this, whether it is built in or a plugin
// (sdktest.Run gives a test the plugin's side of any driver). Progress
// lines reach the func given to WithProgress.
func ExampleDriver() {
	ctx := sdk.WithProgress(context.Background(), func(msg string) {
		fmt.Println("  progress:", msg)
	})
	var d sdk.Driver = NewEcho()
	inst := sdk.Instance{
		Service: "shop",
		Name:    "a1",
		Port:    8081,
		Context: "/",
		Config:  map[string]string{"greeting": "hello"},
	}

	desc, _ := d.Describe(ctx)
	fmt.Println("driver:", desc.Name, desc.Version)
	if err := d.Validate(ctx, sdk.Instance{Name: "a2"}); err != nil {
		fmt.Println("validate a2:", err)
	}
	res, _ := d.Start(ctx, inst)
	fmt.Println("start:", res.Message)
	st, _ := d.Status(ctx, inst)
	fmt.Println("running:", st.Running, st.PID)
	res, _ = d.Step(ctx, inst, "say", map[string]string{"text": "hi"})
	fmt.Println("say:", res.Output["said"])
	if _, err := d.Step(ctx, inst, "dance", nil); errors.Is(err, sdk.ErrUnknownStep) {
		fmt.Println("dance:", err)
	}
	res, _ = d.Stop(ctx, inst)
	fmt.Println("stop:", res.Message)

	// Output:
	// driver: echo 0.1.0
	// validate a2: greeting: required
	//   progress: starting shop/a1 on port 8081
	// start: started, pid 101
	// running: true 101
	// say: hi
	// dance: echo: unknown step "dance"
	//   progress: waiting for pid 101 to exit
	// stop: stopped
}
