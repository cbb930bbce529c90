package e2e_test

// End-to-end tests of what one agent owns alone: its data dir, which a
// second agent must not touch, and its services' leases, which a step
// without a run id must not bypass.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/internal/fixture"
)

// gatedFleet is a fleet with service A on two Tomcat instances (never
// started: the tests need their steps, not their servers), a command
// "wait" that runs until the test creates the file gate, and a command
// "mark" that touches a file.
type gatedFleet struct {
	*fleet
	gate  string
	ports map[string]int // each instance's HTTP port
}

func newGatedFleet(t *testing.T) *gatedFleet {
	t.Helper()
	f := &gatedFleet{fleet: newFleet(t), ports: map[string]int{}}
	f.gate = filepath.Join(f.dir, "gate")
	var instances strings.Builder
	for _, name := range []string{"a1", "a2"} {
		f.ports[name] = freePort(t)
		base := filepath.Join(f.dir, name)
		if err := fixture.CreateInstance(context.Background(), base, f.ports[name], freePort(t)); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&instances, "      %s: { catalina_base: %s, port: %d }\n", name, base, f.ports[name])
	}
	f.commands = fmt.Sprintf("  wait: [/bin/sh, -c, 'until [ -e %s ]; do sleep 0.02; done']\n  mark: [/usr/bin/touch, %s/mark]\n", f.gate, f.dir)
	// Open the gate before the agent stops, so that a failed test does
	// not wait out its shutdown grace for a step that waits.
	t.Cleanup(func() { os.WriteFile(f.gate, nil, 0o644) })
	f.start("  A:\n    driver: tomcat\n    context: /app\n    instances:\n" + instances.String())
	return f
}

// stepAsync posts a step to A/inst and returns a channel that gets its
// HTTP status and body once it has ended.
func (f *gatedFleet) stepAsync(inst, name string, req api.StepRequest) <-chan string {
	f.t.Helper()
	body, _ := json.Marshal(req)
	done := make(chan string, 1)
	go func() {
		r, _ := http.NewRequest(http.MethodPost, f.agentURL+api.StepPath("A", inst, name), bytes.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			done <- err.Error()
			return
		}
		defer resp.Body.Close()
		var out strings.Builder
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
		}
		done <- strconv.Itoa(resp.StatusCode) + " " + out.String()
	}()
	return done
}

// step posts a step to A/inst and returns its HTTP status and body.
func (f *gatedFleet) step(inst, name string, req api.StepRequest) (int, string) {
	f.t.Helper()
	body, _ := json.Marshal(req)
	return f.api(http.MethodPost, api.StepPath("A", inst, name), token, body)
}

// begun reports whether the journal holds n begun steps.
func (f *gatedFleet) begun(n int) func() bool {
	return func() bool {
		b, _ := os.ReadFile(filepath.Join(f.dir, "data", "history.jsonl"))
		return bytes.Count(b, []byte(`"op":"begin"`)) >= n
	}
}

// waitFor polls until cond holds; the deadline only keeps a broken agent
// from hanging the test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// tree lists every file under dir with its size, mode and modification
// time: what an agent that writes nothing leaves as it was.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d %s\n", p, fi.Mode(), fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// A second agent on a running agent's data dir refuses to start, names the
// holder's pid, and touches nothing: the first one's step in flight is not
// marked interrupted, an upload's temp file is not cleaned, and the first
// agent goes on serving. Once the first agent has stopped, the second
// starts on the same dir.
func TestSecondAgentOnDataDir(t *testing.T) {
	f := newGatedFleet(t)
	data := filepath.Join(f.dir, "data")
	journal := filepath.Join(data, "history.jsonl")

	// A journaled step in flight, and a temp file as an upload leaves it.
	done := f.stepAsync("a1", "run", api.StepRequest{Run: "r1", Args: map[string]any{"command": "wait"}})
	waitFor(t, "the step in the journal", f.begun(1))
	part := filepath.Join(data, "artifacts", "tmp", "0123456789ab-1.part")
	if err := os.WriteFile(part, []byte("half an upload"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := tree(t, data)

	// The second agent: its own port, the same data dir.
	f.write("agent2.yaml", fmt.Sprintf("listen: 127.0.0.1:%d\ntoken_file: token\ndata_dir: data\nservices:\n  A:\n    driver: tomcat\n    context: /app\n    instances:\n      a1: { catalina_base: %s, port: %d }\n",
		freePort(t), filepath.Join(f.dir, "a1"), f.ports["a1"]))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // an agent that starts would serve until killed
	defer cancel()
	second := exec.CommandContext(ctx, filepath.Join(f.bin, "baepo-agent"), "--config", filepath.Join(f.dir, "agent2.yaml"))
	var stderr bytes.Buffer
	second.Stdout, second.Stderr = &stderr, &stderr
	err := second.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 || ctx.Err() != nil {
		t.Fatalf("second agent: %v, want exit 1\n%s", err, stderr.String())
	}
	pid := strconv.Itoa(f.agent.Process.Pid)
	want := "baepo-agent: data_dir " + data + " is in use by baepo-agent pid " + pid
	if msg := stderr.String(); !strings.HasPrefix(msg, want) || strings.Count(msg, "\n") != 1 {
		t.Errorf("second agent's stderr = %q, want one line starting %q", msg, want)
	}
	if after := tree(t, data); after != before {
		t.Errorf("the second agent changed the data dir:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// The first agent still serves, and its step ends as it would have.
	if code, body := f.api(http.MethodGet, api.InstancePath("A", "a1"), token, nil); code != http.StatusOK {
		t.Errorf("status from the first agent: %d %s", code, body)
	}
	if err := os.WriteFile(f.gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if res := <-done; !strings.HasPrefix(res, "200 ") || !strings.Contains(res, `"result"`) {
		t.Errorf("the first agent's step: %s", res)
	}
	b, _ := os.ReadFile(journal)
	if bytes.Contains(b, []byte("interrupted")) || !bytes.Contains(b, []byte(`"result":"ok"`)) {
		t.Errorf("journal:\n%s\nwant the step ok, nothing interrupted", b)
	}

	// Stopped, the first agent leaves the dir to the next.
	f.stopAgent()
	f.startAgent()
}

// A step that changes an instance needs the service's lease, with a run
// id or without: one without gets 409 naming the run that holds the
// service, and holds the lease itself while it runs, so that no run
// changes the service under it; without any lease it proceeds.
func TestLeaseWithoutRunID(t *testing.T) {
	f := newGatedFleet(t)
	r1 := api.StepRequest{Run: "r1", Build: api.Build{Tag: "jenkins-app-41"}, Args: map[string]any{"command": "mark"}}
	if code, body := f.step("a1", "run", r1); code != http.StatusOK || !strings.Contains(body, `"result"`) {
		t.Fatalf("r1's step: %d %s", code, body)
	}

	// r1 holds A: a stop without a run id, of the other instance, is refused.
	code, body := f.step("a2", "stop", api.StepRequest{User: "ops"})
	var e api.Error
	json.Unmarshal([]byte(body), &e)
	if code != http.StatusConflict || e.Code != api.CodeBusy || e.Holder == nil || e.Holder.Run != "r1" ||
		!strings.Contains(e.Message, "service A is busy: another run (build jenkins-app-41)") {
		t.Fatalf("stop without a run id during r1's lease: %d %s, want 409 naming r1", code, body)
	}
	// Read-only steps pass.
	if code, body := f.step("a2", "status", api.StepRequest{}); code != http.StatusOK {
		t.Errorf("status during r1's lease: %d %s", code, body)
	}

	// Free, a step without a run id runs, and holds A while it does.
	if code, body := f.api(http.MethodDelete, api.LeasePath("A", "r1"), token, nil); code != http.StatusOK {
		t.Fatalf("end r1's lease: %d %s", code, body)
	}
	done := f.stepAsync("a1", "run", api.StepRequest{User: "ops", Args: map[string]any{"command": "wait"}})
	waitFor(t, "the step without a run id in the journal", f.begun(2))
	r2 := api.StepRequest{Run: "r2", Build: api.Build{Tag: "jenkins-app-42"}, Args: map[string]any{"command": "mark"}}
	code, body = f.step("a2", "run", r2)
	e = api.Error{}
	json.Unmarshal([]byte(body), &e)
	if code != http.StatusConflict || e.Holder == nil || e.Holder.User != "ops" || !strings.Contains(e.Message, "a step without a run id (user ops)") {
		t.Errorf("r2's step while a step without a run id runs: %d %s, want 409 naming it", code, body)
	}
	if err := os.WriteFile(f.gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if res := <-done; !strings.HasPrefix(res, "200 ") || !strings.Contains(res, `"result"`) {
		t.Fatalf("the step without a run id: %s", res)
	}
	// Ended, it leaves no lease behind.
	if code, body := f.step("a2", "run", r2); code != http.StatusOK || !strings.Contains(body, `"result"`) {
		t.Errorf("r2's step after the step without a run id ended: %d %s", code, body)
	}
}
