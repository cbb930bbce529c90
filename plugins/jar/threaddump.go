package jar

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/proc"
)

const (
	// defaultDumpTimeout is how long thread-dump waits for the dump's end
	// unless args.timeout says otherwise.
	defaultDumpTimeout = 10 * time.Second
	// trailerGrace is how long thread-dump waits, after the dump's end
	// marker, for the deadlock report and heap summary HotSpot prints next.
	trailerGrace = time.Second
	// maxDumpBytes caps what thread-dump reads of app.log.
	maxDumpBytes = 64 << 20
)

// A HotSpot thread dump (SIGQUIT, jstack) on stdout looks like this:
//
//	2026-11-24 21:09:22
//	Full thread dump OpenJDK 64-Bit Server VM (17.0.15+6-Debian-1deb12u1 mixed mode, sharing):
//	...
//	"main" #1 prio=5 os_prio=0 cpu=59.13ms elapsed=1.50s tid=0x… nid=0x37fc waiting on condition  […]
//	   java.lang.Thread.State: WAITING (parking)
//	...
//	"VM Thread" os_prio=0 cpu=0.97ms elapsed=1.48s tid=0x… nid=0x3802 runnable
//	...
//	JNI global refs: 12, weak refs: 0
//
//	Found one Java-level deadlock:       (only when there is one; then its report)
//	...
//	Found 1 deadlock.
//
//	Heap                                 (unless -XX:-PrintHeapAtSIGBREAK)
//	 garbage-first heap   total 397312K, used 5338K […]
//	 ...
//
// The "JNI global refs:" line ends the threads; the deadlock report and the
// heap summary come from later VM operations, right after it.
var (
	dumpTimestamp  = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$`)
	javaThread     = regexp.MustCompile(`^".*" #\d+ `)
	deadlocksFound = regexp.MustCompile(`^Found (\d+) deadlocks?\.$`)
)

const (
	dumpStart     = "Full thread dump "
	dumpEnd       = "JNI global refs:"
	deadlockStart = "Found one Java-level deadlock"
	heapStart     = "Heap"
)

// threadDump sends SIGQUIT to the instance's JVM and returns the thread
// dump the JVM prints to its stdout, app.log.
func (d *Driver) threadDump(ctx context.Context, inst sdk.Instance, args map[string]string) (sdk.Result, error) {
	fail := func(err error) (sdk.Result, error) {
		return sdk.Result{}, fmt.Errorf("%s of instance %s: %w", stepThreadDump, instName(inst), err)
	}
	timeout := defaultDumpTimeout
	for k, v := range args {
		switch k {
		case "timeout":
			t, err := time.ParseDuration(v)
			if err != nil || t <= 0 {
				return fail(fmt.Errorf("timeout: %q is not a positive Go duration", v))
			}
			timeout = t
		default:
			return fail(fmt.Errorf("%s: unknown arg (%s takes timeout)", k, stepThreadDump))
		}
	}
	c, err := load(inst)
	if err != nil {
		return fail(err)
	}
	found, err := c.Process().Lookup()
	if err != nil {
		return fail(err)
	}
	pid := found.PID
	if pid == 0 {
		return fail(errors.New("not running"))
	}
	if opt := ignoresSIGQUIT(pid); opt != "" {
		return fail(fmt.Errorf("pid %d runs with %s: the JVM does not handle SIGQUIT, which would kill it", pid, opt))
	}
	if out, ok := stdoutElsewhere(pid, c.logFile()); ok {
		return fail(fmt.Errorf("the stdout of pid %d is %s, not %s: the JVM would print the dump there", pid, out, c.logFile()))
	}

	p, err := os.FindProcess(pid)
	if err != nil {
		return fail(fmt.Errorf("find pid %d: %w", pid, err))
	}
	defer p.Release()
	if !proc.Alive(pid) || !c.owns(pid) {
		return fail(errors.New("not running"))
	}
	log := &logReader{path: c.logFile()}
	if err := log.skipToEnd(); err != nil {
		return fail(err)
	}
	sdk.Progress(ctx, fmt.Sprintf("sending SIGQUIT to pid %d; waiting up to %s for its thread dump in %s", pid, timeout, c.logFile()))
	if err := p.Signal(syscall.SIGQUIT); err != nil {
		return fail(fmt.Errorf("signal pid %d: %w", pid, err))
	}
	dump, err := waitDump(ctx, log, pid, timeout)
	if err != nil {
		return fail(err)
	}
	msg := fmt.Sprintf("thread dump of pid %d (%d threads)", pid, dump.threads)
	if dump.deadlocks > 0 {
		msg += fmt.Sprintf("; the JVM found %d deadlock(s)", dump.deadlocks)
	}
	return sdk.Result{Message: msg, Output: map[string]string{
		"dump":      dump.text,
		"pid":       strconv.Itoa(pid),
		"threads":   strconv.Itoa(dump.threads),
		"deadlocks": strconv.Itoa(dump.deadlocks),
	}}, nil
}

// waitDump reads log until it holds a whole thread dump, timeout has
// passed, ctx is done or pid has exited.
func waitDump(ctx context.Context, log *logReader, pid int, timeout time.Duration) (threadDump, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(proc.PollInterval)
	defer tick.Stop()
	var ended time.Time // when the end marker was first seen
	for {
		grew, err := log.read()
		if err != nil {
			return threadDump{}, err
		}
		dump := parseDump(log.buf)
		if dump.ended {
			if ended.IsZero() {
				ended = time.Now()
			}
			// The heap summary comes last; once it is there and the log
			// has stopped growing, the dump is whole.
			if (dump.heap && !grew) || time.Since(ended) >= trailerGrace {
				return dump, nil
			}
		}
		if !proc.Alive(pid) {
			return threadDump{}, fmt.Errorf("pid %d exited after SIGQUIT%s", pid, tailOf(log.buf))
		}
		select {
		case <-ctx.Done():
			return threadDump{}, ctx.Err()
		case <-deadline.C:
			if dump.started {
				return threadDump{}, fmt.Errorf("the thread dump in %s did not end (no %q line) within %s", log.path, dumpEnd, timeout)
			}
			return threadDump{}, fmt.Errorf("no thread dump appeared in %s within %s", log.path, timeout)
		case <-tick.C:
		}
	}
}

// threadDump is what parseDump found.
type threadDump struct {
	started   bool   // the "Full thread dump" line is there
	ended     bool   // so is the "JNI global refs:" line after it
	heap      bool   // so is the heap summary after that
	text      string // from the timestamp line to the last line of the dump
	threads   int    // Java threads (VM-internal threads have no #number)
	deadlocks int
}

// parseDump finds the first thread dump in the complete lines of log.
func parseDump(log []byte) threadDump {
	var d threadDump
	text := string(log)
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	} else {
		return d
	}
	lines := strings.Split(text, "\n")
	start := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, dumpStart) })
	if start < 0 {
		return d
	}
	d.started = true
	first := start
	if start > 0 && dumpTimestamp.MatchString(lines[start-1]) {
		first = start - 1
	}
	end := -1
	for i := start + 1; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], dumpEnd) {
			end = i
			break
		}
		if javaThread.MatchString(lines[i]) {
			d.threads++
		}
	}
	if end < 0 {
		d.threads = 0
		return d
	}
	d.ended = true

	// The trailer: blank lines, the deadlock report, the heap summary.
	inDeadlock := false
trailer:
	for i := end + 1; i < len(lines); i++ {
		l := lines[i]
		switch {
		case strings.HasPrefix(l, deadlockStart):
			inDeadlock = true
		case inDeadlock:
			if m := deadlocksFound.FindStringSubmatch(l); m != nil {
				d.deadlocks, _ = strconv.Atoi(m[1])
				inDeadlock = false
				end = i
			}
		case strings.TrimSpace(l) == "":
		case l == heapStart:
			d.heap = true
			end = i
			for i++; i < len(lines) && strings.HasPrefix(lines[i], " "); i++ {
				end = i
			}
			break trailer
		default:
			break trailer // the application's own output
		}
	}
	d.text = strings.Join(lines[first:end+1], "\n") + "\n"
	return d
}

// logReader reads what is appended to a log file from an offset on.
type logReader struct {
	path string
	off  int64  // where buf starts in the file
	buf  []byte // what was read from off on
}

// skipToEnd makes the reader start at the file's current end.
func (r *logReader) skipToEnd() error {
	fi, err := os.Stat(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		r.off = 0
		return nil
	}
	if err != nil {
		return err
	}
	r.off, r.buf = fi.Size(), nil
	return nil
}

// read appends what the file gained since the last read and reports
// whether it gained anything. A file that shrank (rotated by truncation) is
// read again from its start.
func (r *logReader) read() (grew bool, err error) {
	f, err := os.Open(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	end := r.off + int64(len(r.buf))
	if fi.Size() < end {
		r.off, r.buf, end = 0, nil, 0
	}
	if fi.Size() == end {
		return false, nil
	}
	if fi.Size()-r.off > maxDumpBytes {
		return false, fmt.Errorf("%s grew by more than %d MiB without a whole thread dump", r.path, maxDumpBytes>>20)
	}
	more := make([]byte, fi.Size()-end)
	n, err := f.ReadAt(more, end)
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read %s: %w", r.path, err)
	}
	r.buf = append(r.buf, more[:n]...)
	return n > 0, nil
}

// ignoresSIGQUIT returns the JVM option that makes pid's JVM leave SIGQUIT
// to the OS (whose default action kills it), or "" when it handles it.
func ignoresSIGQUIT(pid int) string {
	bad := func(opt string) bool { return opt == "-Xrs" || opt == "-XX:+ReduceSignalUsage" }
	if args, err := proc.Cmdline(pid); err == nil {
		for _, a := range args[1:] {
			if a == "-jar" {
				break
			}
			if bad(a) {
				return a
			}
		}
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return ""
	}
	for _, kv := range strings.Split(string(environ), "\x00") {
		k, v, _ := strings.Cut(kv, "=")
		if k != "JAVA_TOOL_OPTIONS" && k != "JDK_JAVA_OPTIONS" && k != "_JAVA_OPTIONS" {
			continue
		}
		for _, opt := range strings.Fields(v) {
			if bad(opt) {
				return opt + " (in " + k + ")"
			}
		}
	}
	return ""
}

// stdoutElsewhere reports whether pid's stdout is known to be another file
// than log (a JVM started by hand, or a log moved away), and names it.
func stdoutElsewhere(pid int, log string) (string, bool) {
	fd := fmt.Sprintf("/proc/%d/fd/1", pid)
	out, err := os.Stat(fd) // follows the link to the open file
	if err != nil {
		return "", false // not ours to look at: try anyway
	}
	if want, err := os.Stat(log); err == nil && os.SameFile(out, want) {
		return "", false
	}
	name, err := os.Readlink(fd)
	if err != nil {
		name = "another file"
	}
	return name, true
}

// tailOf returns the last lines of b for an error message.
func tailOf(b []byte) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	if len(lines) > proc.FailTail {
		lines = lines[len(lines)-proc.FailTail:]
	}
	return "; the log says:\n" + strings.Join(lines, "\n")
}
