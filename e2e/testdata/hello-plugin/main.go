// Command baepo-plugin-hello is a driver plugin built outside baepo's
// module, against its sdk alone: the end-to-end tests build it as a
// platform team would and call its custom step from a flow.
package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/baepo/baepo/sdk"
)

func main() { sdk.Serve(&hello{}) }

// hello runs nothing: its instances are in memory.
type hello struct {
	mu      sync.Mutex
	running map[string]bool
}

func (h *hello) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{
		Name: "hello", Version: "1.0.0",
		Config: []sdk.ConfigField{{Name: "greeting", Doc: "what the hello step says", Required: true}},
		Steps:  []sdk.StepInfo{{Name: "hello", Doc: "greet someone"}},
	}, nil
}

func (h *hello) Validate(_ context.Context, inst sdk.Instance) error {
	if inst.Config["greeting"] == "" {
		return fmt.Errorf("greeting: missing")
	}
	return nil
}

func (h *hello) set(inst sdk.Instance, running bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running == nil {
		h.running = map[string]bool{}
	}
	h.running[inst.Service+"/"+inst.Name] = running
}

func (h *hello) Start(ctx context.Context, inst sdk.Instance) (sdk.Result, error) {
	h.set(inst, true)
	return sdk.Result{Message: "started"}, nil
}

func (h *hello) Stop(ctx context.Context, inst sdk.Instance) (sdk.Result, error) {
	h.set(inst, false)
	return sdk.Result{Message: "stopped"}, nil
}

func (h *hello) Install(ctx context.Context, inst sdk.Instance, rel sdk.Release) (sdk.Result, error) {
	return sdk.Result{Message: "installed " + rel.Name}, nil
}

func (h *hello) Status(ctx context.Context, inst sdk.Instance) (sdk.Status, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return sdk.Status{Running: h.running[inst.Service+"/"+inst.Name]}, nil
}

func (h *hello) Logs(context.Context, sdk.Instance, int) (string, error) { return "", nil }

func (h *hello) Step(ctx context.Context, inst sdk.Instance, name string, args map[string]string) (sdk.Result, error) {
	if name != "hello" {
		return sdk.Result{}, fmt.Errorf("%q: %w (hello has: hello)", name, sdk.ErrUnknownStep)
	}
	sdk.Progress(ctx, "greeting "+args["who"])
	msg := fmt.Sprintf("%s, %s, from %s", inst.Config["greeting"], args["who"], inst.Name)
	return sdk.Result{Message: msg, Output: map[string]string{"greeting": msg}}, nil
}
