// Package sdktest tests drivers through the real plugin protocol without a
// plugin process: [Run] serves a driver in-process over gRPC and returns
// the agent's side of it, and [Conformance] checks the behaviour every
// driver owes the agent.
//
// Like package sdk, it imports nothing else from baepo's module.
package sdktest

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/baepo/baepo/sdk"
)

// Run serves d in this process through the plugin's real gRPC adapters
// ([sdk.GRPCPlugin]'s GRPCServer and GRPCClient, over an in-memory
// connection) and returns the host side's Driver: every call goes through
// the protobuf messages, the error mapping, progress streaming and context
// propagation a plugin binary would. Both sides stop when the test ends.
func Run(t testing.TB, d sdk.Driver) sdk.Driver {
	t.Helper()
	p := &sdk.GRPCPlugin{Impl: d}

	server := grpc.NewServer()
	if err := p.GRPCServer(nil, server); err != nil {
		t.Fatalf("serve driver: %v", err)
	}
	lis := bufconn.Listen(1 << 20)
	go func() { _ = server.Serve(lis) }()

	conn, err := grpc.NewClient("passthrough:///sdktest",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return lis.DialContext(ctx)
		}),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	)
	if err != nil {
		server.Stop()
		t.Fatalf("connect to driver: %v", err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		server.Stop()
	})

	raw, err := p.GRPCClient(t.Context(), nil, conn)
	if err != nil {
		t.Fatalf("driver client: %v", err)
	}
	return raw.(sdk.Driver)
}

// Conformance checks, through [Run], what the agent relies on of every
// driver, on the instance inst, which must be stopped when it is called and
// is stopped again when it returns: Describe names the driver and its
// config keys and steps, uniquely; inst validates; Stop and Start succeed
// when there is nothing to do; Status follows them; an undeclared step
// fails with an error wrapping [sdk.ErrUnknownStep]. Install is not
// checked: it needs an artifact of the driver's kind.
//
// It starts and stops the real app server, so inst must be one the test
// may run, on a free port, with a StateDir of its own.
func Conformance(t *testing.T, d sdk.Driver, inst sdk.Instance) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	drv := Run(t, d)

	desc, err := drv.Describe(ctx)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if desc.Name == "" {
		t.Errorf("Describe: empty Name")
	}
	unique := func(what, name string, seen map[string]bool) {
		if name == "" {
			t.Errorf("Describe: %s with an empty name", what)
		} else if seen[name] {
			t.Errorf("Describe: %s %q declared twice", what, name)
		}
		seen[name] = true
	}
	keys := map[string]bool{}
	for _, f := range desc.Config {
		unique("config key", f.Name, keys)
	}
	steps := map[string]bool{}
	for _, s := range desc.Steps {
		unique("step", s.Name, steps)
	}
	if desc.HotDeploy && !steps["retire"] {
		t.Errorf("Describe: HotDeploy without a custom step \"retire\" (the agent refuses deploy_mode: hot without it)")
	}

	if err := drv.Validate(ctx, inst); err != nil {
		t.Fatalf("Validate %s/%s: %v", inst.Service, inst.Name, err)
	}

	stopped := func(when string) {
		t.Helper()
		st, err := drv.Status(ctx, inst)
		if err != nil {
			t.Fatalf("Status %s: %v", when, err)
		}
		if st.Running {
			t.Fatalf("Status %s: running (pid %d), want stopped", when, st.PID)
		}
	}
	stopped("before Start")
	if _, err := drv.Stop(ctx, inst); err != nil {
		t.Fatalf("Stop of a stopped instance: %v", err)
	}

	t.Cleanup(func() {
		// Leave nothing running, whatever failed.
		_, _ = d.Stop(context.Background(), inst)
	})
	for _, when := range []string{"Start", "Start of a running instance"} {
		if _, err := drv.Start(ctx, inst); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		st, err := drv.Status(ctx, inst)
		if err != nil {
			t.Fatalf("Status after %s: %v", when, err)
		}
		if !st.Running {
			t.Fatalf("Status after %s: not running (%s)", when, st.Message)
		}
	}

	for _, when := range []string{"Stop", "Stop of a stopped instance"} {
		if _, err := drv.Stop(ctx, inst); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		stopped("after " + when)
	}

	const undeclared = "sdktest-no-such-step"
	if steps[undeclared] {
		return
	}
	_, err = drv.Step(ctx, inst, undeclared, nil)
	if !errors.Is(err, sdk.ErrUnknownStep) {
		t.Errorf("Step %q: got error %v, want one wrapping sdk.ErrUnknownStep", undeclared, err)
	}
}
