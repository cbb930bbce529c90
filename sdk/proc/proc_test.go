package proc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// start runs name with args as a child of the test, reaped in the
// background, and kills it when the test ends. It returns once the child
// has exec'd name, so that what a shell script sets up before exec (such
// as an ignored SIGTERM) is in place.
func start(t *testing.T, name string, args ...string) (pid int, exited <-chan error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch, done := make(chan error, 1), make(chan struct{})
	go func() { ch <- cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	execd := func() bool {
		args, _ := Cmdline(cmd.Process.Pid)
		return len(args) > 0 && filepath.Base(args[0]) == "sleep"
	}
	for end := time.Now().Add(5 * time.Second); !execd() && time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond)
	}
	return cmd.Process.Pid, ch
}

// zombie returns the pid of a child that has exited but is not reaped.
func zombie(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Wait() })
	pid := cmd.Process.Pid
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if strings.Contains(string(stat), ") Z ") {
			return pid
		}
	}
	t.Fatalf("pid %d did not become a zombie", pid)
	return 0
}

// reaped returns the pid of a child that has exited and been reaped.
func reaped(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestAlive(t *testing.T) {
	for _, tc := range []struct {
		name string
		pid  func(t *testing.T) int
		want bool
	}{
		{"running", func(t *testing.T) int { pid, _ := start(t, "sleep", "30"); return pid }, true},
		{"this process", func(*testing.T) int { return os.Getpid() }, true},
		{"init (another user's)", func(*testing.T) int { return 1 }, true},
		{"zombie", zombie, false},
		{"reaped", reaped, false},
		{"zero", func(*testing.T) int { return 0 }, false},
		{"negative", func(*testing.T) int { return -1 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Alive(tc.pid(t)); got != tc.want {
				t.Errorf("Alive = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTerminate(t *testing.T) {
	ignoreTerm := []string{"sh", "-c", `trap "" TERM; exec sleep 30`}
	for _, tc := range []struct {
		name       string
		argv       []string
		timeout    time.Duration
		ctxTimeout time.Duration // 0: none
		owns       bool
		wantKilled bool
		wantErr    error // nil: none
		wantAlive  bool  // after Terminate
	}{
		{name: "exits on SIGTERM", argv: []string{"sleep", "30"}, timeout: 10 * time.Second, owns: true},
		{name: "ignores SIGTERM", argv: ignoreTerm, timeout: 200 * time.Millisecond, owns: true, wantKilled: true},
		{name: "cancelled", argv: ignoreTerm, timeout: time.Minute, ctxTimeout: 200 * time.Millisecond, owns: true,
			wantKilled: true, wantErr: context.DeadlineExceeded},
		{name: "not owned", argv: []string{"sleep", "30"}, timeout: time.Second, wantAlive: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid, exited := start(t, tc.argv[0], tc.argv[1:]...)
			ctx := t.Context()
			if tc.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
				defer cancel()
			}
			var msgs []string
			opts := &TerminateOptions{
				Owns:     func(p int) bool { return p == pid && tc.owns },
				Progress: func(msg string) { msgs = append(msgs, msg) },
			}
			begin := time.Now()
			killed, err := Terminate(ctx, pid, tc.timeout, opts)
			if killed != tc.wantKilled || (tc.wantErr == nil) != (err == nil) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Errorf("Terminate = %v, %v; want %v, %v", killed, err, tc.wantKilled, tc.wantErr)
			}
			if Alive(pid) != tc.wantAlive {
				t.Errorf("after Terminate: Alive(%d) = %v, want %v", pid, Alive(pid), tc.wantAlive)
			}
			if !tc.wantAlive {
				select {
				case err := <-exited:
					var exit *exec.ExitError
					sig := syscall.SIGTERM
					if tc.wantKilled {
						sig = syscall.SIGKILL
					}
					if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != sig {
						t.Errorf("the process ended with %v, want %v", err, sig)
					}
				case <-time.After(5 * time.Second):
					t.Error("the process did not exit")
				}
			}
			wait := tc.timeout
			if tc.ctxTimeout > 0 {
				wait = tc.ctxTimeout
			}
			if took := time.Since(begin); tc.wantKilled && took < wait {
				t.Errorf("killed after %s, before the %s it should have waited", took, wait)
			}
			if tc.owns && (len(msgs) == 0 || !strings.HasPrefix(msgs[0], "sending SIGTERM")) {
				t.Errorf("progress: %q", msgs)
			}
		})
	}
	t.Run("gone", func(t *testing.T) {
		for _, pid := range []int{reaped(t), zombie(t)} {
			if killed, err := Terminate(t.Context(), pid, time.Second, nil); killed || err != nil {
				t.Errorf("Terminate(%d) = %v, %v; want false, nil", pid, killed, err)
			}
		}
	})
}

func TestKill(t *testing.T) {
	pid, exited := start(t, "sh", "-c", `trap "" TERM; exec sleep 30`)
	if err := Kill(pid); err != nil || Alive(pid) {
		t.Fatalf("Kill = %v; alive: %v", err, Alive(pid))
	}
	<-exited
	if err := Kill(reaped(t)); err != nil {
		t.Errorf("Kill of a reaped pid: %v", err)
	}
}

func TestLaunch(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "logs", "app.log")
	for i, tc := range []struct {
		name   string
		script string
		want   string // log after the run
		code   int
	}{
		{"new log", "echo out; echo err >&2", "out\nerr\n", 0},
		{"appends", "echo again; exit 3", "out\nerr\nagain\n", 3},
		{"own session", `[ "$(ps -o sid= -p $$)" -eq $$ ] && echo leader`, "out\nerr\nagain\nleader\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("sh", "-c", tc.script)
			exited, err := Launch(cmd, log)
			if err != nil {
				t.Fatal(err)
			}
			err = <-exited
			if code := cmd.ProcessState.ExitCode(); code != tc.code {
				t.Errorf("run %d: exit code %d (%v), want %d", i, code, err, tc.code)
			}
			if got, _ := os.ReadFile(log); string(got) != tc.want {
				t.Errorf("log %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := Launch(exec.Command(filepath.Join(dir, "no-such-command")), log); err == nil {
		t.Error("Launch of a missing command: no error")
	}
}

func TestPIDFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state", "app.pid")
	if _, err := ReadPID(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadPID of a missing file: %v, want fs.ErrNotExist", err)
	}
	if err := RemovePID(path); err != nil {
		t.Errorf("RemovePID of a missing file: %v", err)
	}
	if err := WritePID(path, 4242); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != "4242\n" {
		t.Errorf("pid file holds %q", data)
	}
	for _, tc := range []struct {
		text    string
		want    int
		wantErr error
	}{
		{"4242\n", 4242, nil},
		{"  17 \n\n", 17, nil},
		{"", 0, ErrBadPIDFile},
		{"abc\n", 0, ErrBadPIDFile},
		{"0\n", 0, ErrBadPIDFile},
		{"-5\n", 0, ErrBadPIDFile},
		{"12 13\n", 0, ErrBadPIDFile},
	} {
		if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := ReadPID(path); got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("ReadPID of %q = %d, %v; want %d, %v", tc.text, got, err, tc.want, tc.wantErr)
		}
	}
	if err := RemovePID(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after RemovePID: %v", err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.war")
	for _, tc := range []struct {
		name, text string
		perm       os.FileMode
	}{
		{"new", "v1", 0o644},
		{"replace", "version two", 0o600},
		{"empty", "", 0o640},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := WriteFileAtomic(path, strings.NewReader(tc.text), tc.perm); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if data, _ := os.ReadFile(path); err != nil || string(data) != tc.text || fi.Mode().Perm() != tc.perm {
				t.Errorf("file holds %q with mode %v (%v), want %q, %v", data, fi.Mode().Perm(), err, tc.text, tc.perm)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("dir holds %v, want only app.war", entries)
			}
		})
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "f"), strings.NewReader("x"), 0o644); err == nil {
		t.Error("WriteFileAtomic in a missing directory: no error")
	}
	failing := errReader{errors.New("boom")}
	if err := WriteFileAtomic(path, failing, 0o644); !errors.Is(err, failing.err) {
		t.Errorf("WriteFileAtomic of a failing reader: %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "" {
		t.Errorf("a failed write changed the file to %q", data)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("a failed write left %v", entries)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestTail(t *testing.T) {
	dir := t.TempDir()
	var long strings.Builder
	for i := range 50000 { // several 64 KiB blocks
		fmt.Fprintf(&long, "line %d\n", i)
	}
	for _, tc := range []struct {
		name, text string
		n          int
		want       string
	}{
		{"long", long.String(), 3, "line 49997\nline 49998\nline 49999\n"},
		{"long, across blocks", long.String(), 20000, strings.Join(strings.SplitAfter(long.String(), "\n")[30000:], "")},
		{"fewer lines than asked", "a\nb\n", 5, "a\nb\n"},
		{"exactly", "a\nb\n", 2, "a\nb\n"},
		{"one", "a\nb\n", 1, "b\n"},
		{"no final newline", "a\nb\nc", 2, "b\nc"},
		{"blank lines", "a\n\n\n", 2, "\n\n"},
		{"empty", "", 3, ""},
		{"zero lines", "a\nb\n", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			if got, err := Tail(path, tc.n); got != tc.want || err != nil {
				t.Errorf("Tail(%d) = %.60q, %v; want %.60q", tc.n, got, err, tc.want)
			}
		})
	}
	if _, err := Tail(filepath.Join(dir, "missing"), 3); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Tail of a missing file: %v, want fs.ErrNotExist", err)
	}
}
