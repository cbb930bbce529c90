// Package enginetest provides an in-process [engine.Target] for tests of the
// engine and the client: a fleet of servers, services and instances that
// records every step and fails the steps a test asks it to. It reaches no
// agent and runs no app server; the end-to-end tests do that.
package enginetest

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/baepo/baepo/engine"
	"github.com/baepo/baepo/engine/step"
)

// Fleet is an in-process target. Its exported fields are set before use.
type Fleet struct {
	// Servers maps server → service → instance names.
	Servers map[string]map[string][]string `yaml:"servers"`
	// Fail maps "server/service/instance" → step name → error message.
	Fail map[string]map[string]string `yaml:"fail"`
	// Refuse maps "server/service/instance" → step name → the message of
	// an error wrapping engine.ErrRefused: the agent refused the step before
	// running it, as it does a command that is not allow-listed.
	Refuse map[string]map[string]string `yaml:"refuse"`
	// Unreachable servers answer every call with an error wrapping
	// engine.ErrUnreachable.
	Unreachable []string `yaml:"unreachable"`
	// Delay is how long every step takes; a cancelled context cuts it short.
	Delay time.Duration `yaml:"delay"`
	// Initial maps "server/service/instance" → its state before the first
	// step; any other instance starts stopped, with no release.
	Initial map[string]InstanceState `yaml:"initial"`
	// PrepareDelay is how long Prepare takes, as an upload of the run's
	// artifacts would; a cancelled context cuts it short.
	PrepareDelay time.Duration `yaml:"prepare_delay"`
	// Commands maps the commands every server allow-lists to the
	// arguments each takes, as an agent's commands: and their {arg:NAME}.
	// A run step of another command, or with other arguments, is refused.
	// Nil allows every command with any arguments.
	Commands map[string][]string `yaml:"commands"`
	// Steps maps service → the steps its driver offers besides the core
	// ones; any other is refused. A service not in it offers every step.
	Steps map[string][]string `yaml:"steps"`
	// Balancers maps "server/service/instance" → the kind of its load
	// balancer ("haproxy", "command"), as an agent's balancer: config; a
	// drain or undrain of any other instance is refused.
	Balancers map[string]string `yaml:"balancers"`

	mu      sync.Mutex
	calls   []Call
	running int // steps in flight now
	peak    int // most steps ever in flight at once
	state   map[engine.Instance]*InstanceState
}

// Call is one step the fleet received.
type Call struct {
	Instance engine.Instance
	Step     engine.Step
}

// InstanceState is what the fleet remembers of one instance.
type InstanceState struct {
	Running  bool   `yaml:"running"`
	Release  string `yaml:"release"` // the artifact of the last install
	Previous string `yaml:"previous"`
	// Health is "ok" once a health step passed since the last stop, start,
	// restart, install or rollback, and HealthAt when; both "" otherwise.
	Health   string `yaml:"health"`
	HealthAt string `yaml:"health_at"`
	// Problem is what the agent reports wrong with the instance's
	// releases, such as a broken current link; "" for none.
	Problem string `yaml:"problem"`
	// Drained: a drain took the instance out of its balancer's rotation
	// and no undrain has put it back.
	Drained bool `yaml:"drained"`
}

// status is the output of a status step, with the fields an agent gives.
func (st *InstanceState) status() map[string]any {
	out := map[string]any{"running": st.Running, "health": "unknown: not running"}
	if st.Running {
		out["pid"] = 4711
		out["health"] = "not checked since start"
		if st.Health != "" {
			out["health"], out["health_at"], out["health_release"] = st.Health, st.HealthAt, st.Release
		}
	}
	for k, v := range map[string]string{"release": st.Release, "previous": st.Previous, "problem": st.Problem} {
		if v != "" {
			out[k] = v
		}
	}
	return out
}

// LoadFleet reads a fleet from a YAML file.
func LoadFleet(path string) (*Fleet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load fleet: %w", err)
	}
	var f Fleet
	if err := yaml.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("load fleet %s: %w", path, err)
	}
	return &f, nil
}

// Instances implements engine.Target. An empty service lists every service's
// instances, services in name order.
func (f *Fleet) Instances(ctx context.Context, server, service string) ([]engine.Instance, error) {
	if slices.Contains(f.Unreachable, server) {
		return nil, fmt.Errorf("%w: %s: connection refused", engine.ErrUnreachable, server)
	}
	services, ok := f.Servers[server]
	if !ok {
		return nil, fmt.Errorf("server %s: not in the fleet", server)
	}
	var names []string
	if service == "" {
		for s := range services {
			names = append(names, s)
		}
		sort.Strings(names)
	} else {
		if _, ok := services[service]; !ok {
			return nil, fmt.Errorf("server %s: unknown service %q", server, service)
		}
		names = []string{service}
	}
	var out []engine.Instance
	for _, s := range names {
		for _, i := range services[s] {
			out = append(out, engine.Instance{Server: server, Service: s, Name: i, Balancer: f.Balancers[server+"/"+s+"/"+i]})
		}
	}
	return out, nil
}

// Prepare implements engine.Preparer: it takes PrepareDelay.
func (f *Fleet) Prepare(ctx context.Context, servers []string, artifacts []engine.Artifact) error {
	select {
	case <-time.After(f.PrepareDelay):
		return nil
	case <-ctx.Done():
		return fmt.Errorf("upload to %v: %w", servers, context.Cause(ctx))
	}
}

// Check implements engine.Checker: it refuses, as Do does, the steps of
// Refuse, a command Commands does not allow-list or give those arguments,
// and a step the service's driver does not offer (Steps). It records no
// call.
func (f *Fleet) Check(_ context.Context, inst engine.Instance, st engine.Step) error {
	if slices.Contains(f.Unreachable, inst.Server) {
		return fmt.Errorf("%w: %s: connection refused", engine.ErrUnreachable, inst.Server)
	}
	if msg, ok := f.Refuse[inst.String()][st.Name]; ok {
		return fmt.Errorf("%w: %s", engine.ErrRefused, msg)
	}
	if st.Name == step.Run && f.Commands != nil {
		name, _ := st.Args["command"].(string)
		want, ok := f.Commands[name]
		if !ok {
			return fmt.Errorf("%w: command %q is not allow-listed (commands: %s)", engine.ErrRefused, name, strings.Join(slices.Sorted(maps.Keys(f.Commands)), ", "))
		}
		got := slices.Sorted(maps.Keys(st.Args))
		got = slices.DeleteFunc(got, func(k string) bool { return k == "command" })
		if !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			return fmt.Errorf("%w: command %s takes %v, got %v", engine.ErrRefused, name, want, got)
		}
	}
	if (st.Name == step.Drain || st.Name == step.Undrain) && f.Balancers[inst.String()] == "" {
		return fmt.Errorf("%w: %s: instance %s/%s has no balancer", engine.ErrRefused, st.Name, inst.Service, inst.Name)
	}
	if offered, ok := f.Steps[inst.Service]; ok && !step.IsCore(st.Name) && !slices.Contains(offered, st.Name) {
		return fmt.Errorf("%w: unknown step %q for %s (driver steps: %s)", engine.ErrRefused, st.Name, inst, strings.Join(offered, ", "))
	}
	return nil
}

// Do implements engine.Target.
func (f *Fleet) Do(ctx context.Context, inst engine.Instance, req engine.Step) (engine.StepResult, error) {
	if err := f.Check(ctx, inst, req); err != nil {
		return engine.StepResult{}, err
	}
	f.mu.Lock()
	f.calls = append(f.calls, Call{Instance: inst, Step: req})
	f.running++
	f.peak = max(f.peak, f.running)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.running--
		f.mu.Unlock()
	}()
	if f.Delay > 0 {
		select {
		case <-time.After(f.Delay):
		case <-ctx.Done():
			return engine.StepResult{}, fmt.Errorf("%s %s: %w", req.Name, inst, ctx.Err())
		}
	}
	if msg, ok := f.Fail[inst.String()][req.Name]; ok {
		return engine.StepResult{}, fmt.Errorf("%s", msg)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.stateLocked(inst)
	switch req.Name {
	case "stop", "start", "restart", "install", "rollback":
		st.Health, st.HealthAt = "", ""
	}
	switch req.Name {
	case "stop":
		st.Running = false
	case "start":
		st.Running = true
	case "restart":
		st.Running = true
	case "install":
		st.Previous, st.Release = st.Release, fmt.Sprint(req.Args["artifact"])
	case "rollback":
		if st.Previous == "" {
			return engine.StepResult{}, fmt.Errorf("rollback %s: no previous release", inst)
		}
		st.Previous, st.Release = st.Release, st.Previous
	case "health":
		if !st.Running {
			return engine.StepResult{}, fmt.Errorf("health %s: not running", inst)
		}
		st.Health, st.HealthAt = "ok", time.Now().UTC().Format(time.RFC3339)
	case "status":
		return engine.StepResult{
			Message: fmt.Sprintf("running=%v release=%s", st.Running, st.Release),
			Output:  st.status(),
		}, nil
	case "logs":
		return engine.StepResult{Output: map[string]any{"text": "log line 1\nlog line 2\n"}}, nil
	case "drain":
		st.Drained = true
	case "undrain":
		st.Drained = false
	}
	return engine.StepResult{Message: req.Name + " ok", Output: map[string]any{"step": req.Name}}, nil
}

func (f *Fleet) stateLocked(inst engine.Instance) *InstanceState {
	inst.Balancer = "" // an instance is its server, service and name
	if f.state == nil {
		f.state = map[engine.Instance]*InstanceState{}
	}
	st, ok := f.state[inst]
	if !ok {
		initial := f.Initial[inst.String()]
		st = &initial
		f.state[inst] = st
	}
	return st
}

// Calls returns every step received so far, in order of arrival.
func (f *Fleet) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Peak returns the most steps that were ever in flight at once.
func (f *Fleet) Peak() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peak
}

// State returns a copy of what the fleet remembers of inst.
func (f *Fleet) State(inst engine.Instance) InstanceState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return *f.stateLocked(inst)
}

var (
	_ engine.Target   = (*Fleet)(nil)
	_ engine.Preparer = (*Fleet)(nil)
	_ engine.Checker  = (*Fleet)(nil)
)
