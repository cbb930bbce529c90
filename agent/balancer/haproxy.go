package balancer

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// HAProxy is one server of a backend of HAProxy, reached through the
// runtime API on its stats socket, which must be at level admin:
//
//	global
//	    stats socket /run/haproxy/admin.sock mode 660 level admin
//
// Drain sets the server's state to drain (it takes no new requests and
// finishes the ones it has) and waits until HAProxy counts no session on it;
// Undrain sets it to ready and waits until HAProxy's health check says UP.
type HAProxy struct {
	Socket  string        // the stats socket's path
	Backend string        // the backend's name in HAProxy's config
	Server  string        // the server's name in that backend
	Poll    time.Duration // how often a wait reads the server's state; 0 is 100ms
}

// nameRE is what a backend or server name may be: HAProxy's own
// characters, and nothing that could end one runtime API command and start
// another.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

// ValidName reports whether s may name a backend or server of HAProxy.
func ValidName(s string) bool { return nameRE.MatchString(s) && len(s) <= 128 }

// MaxSocketPath is the longest path a Unix socket may have on Linux
// (sun_path is 108 bytes with its terminating NUL).
const MaxSocketPath = 107

const (
	defaultPoll = 100 * time.Millisecond
	// commandTimeout bounds one exchange with HAProxy, whatever the
	// step's context allows: its runtime API answers at once or not at all.
	commandTimeout = 5 * time.Second
	maxReply       = 16 << 20
)

// Kind implements Balancer.
func (h *HAProxy) Kind() string { return KindHAProxy }

// String implements Balancer: "haproxy app/web1".
func (h *HAProxy) String() string { return "haproxy " + h.Backend + "/" + h.Server }

// ServerState is the server's row of `show stat`.
type ServerState struct {
	Status   string // UP, DOWN, DRAIN, MAINT, NOLB, "no check", "UP 1/3", …
	Sessions int    // scur: the sessions on the server now, requests in flight
	Queued   int    // qcur: requests queued for the server
	Check    string // check_desc and check_code: why the health check says so
}

// InFlight is the requests the server has or will be given.
func (s ServerState) InFlight() int { return s.Sessions + s.Queued }

// Serving reports whether HAProxy sends the server requests: UP (also
// while a failed check may take it down, "UP 1/3"), or no health check.
func (s ServerState) Serving() bool {
	return s.Status == "UP" || strings.HasPrefix(s.Status, "UP ") || s.Status == "no check"
}

// Drain implements Balancer. A drain that fails once the server is
// draining (its sessions cannot be read, the step is cancelled) sets it
// ready again: the step failed, so nothing will stop the instance, and it
// must not stay out of rotation for it.
func (h *HAProxy) Drain(ctx context.Context, timeout time.Duration) (Result, error) {
	if err := h.set(ctx, "drain"); err != nil {
		return Result{}, err
	}
	res, err := h.waitIdle(ctx, timeout)
	if err != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commandTimeout)
		defer cancel()
		if rerr := h.set(rctx, "ready"); rerr != nil {
			return Result{}, fmt.Errorf("%w; and it stays drained: %v", err, rerr)
		}
		return Result{}, fmt.Errorf("%w; set ready again", err)
	}
	return res, nil
}

// waitIdle waits until the draining server has no request in flight, or
// timeout has passed.
func (h *HAProxy) waitIdle(ctx context.Context, timeout time.Duration) (Result, error) {
	start := time.Now()
	for {
		st, err := h.State(ctx)
		if err != nil && ctx.Err() != nil {
			// Interrupted while asking: say so, as when interrupted between asks.
			return Result{}, fmt.Errorf("%s was draining: %w", h, context.Cause(ctx))
		}
		if err != nil {
			return Result{}, fmt.Errorf("%s is draining, but its sessions cannot be read: %w", h, err)
		}
		waited := time.Since(start)
		out := h.output(st)
		if st.InFlight() == 0 {
			return Result{Message: fmt.Sprintf("drained %s: no request in flight (waited %s)", h, waited.Round(time.Millisecond)), Output: out}, nil
		}
		if waited >= timeout {
			return Result{Message: fmt.Sprintf("drained %s: %s still in flight after drain_timeout %s", h, requests(st.InFlight()), timeout), Output: out}, nil
		}
		if err := sleep(ctx, min(h.poll(), timeout-waited)); err != nil {
			return Result{}, fmt.Errorf("%s was draining, %s in flight: %w", h, requests(st.InFlight()), err)
		}
	}
}

// Undrain implements Balancer.
func (h *HAProxy) Undrain(ctx context.Context, timeout time.Duration) (Result, error) {
	if err := h.set(ctx, "ready"); err != nil {
		return Result{}, err
	}
	start := time.Now()
	for {
		st, err := h.State(ctx)
		if err != nil {
			return Result{}, fmt.Errorf("%s was set ready, but its state cannot be read: %w", h, err)
		}
		waited := time.Since(start)
		if st.Serving() {
			return Result{Message: fmt.Sprintf("%s is back in rotation: %s (waited %s)", h, st.Status, waited.Round(time.Millisecond)), Output: h.output(st)}, nil
		}
		if waited >= timeout {
			why := ""
			if st.Check != "" {
				why = ", health check: " + st.Check
			}
			return Result{}, fmt.Errorf("%s is %s, not UP, after undrain_timeout %s%s: HAProxy sends it no requests (check that the instance serves what HAProxy's check asks for)", h, st.Status, timeout, why)
		}
		if err := sleep(ctx, min(h.poll(), timeout-waited)); err != nil {
			return Result{}, fmt.Errorf("%s was set ready and is %s: %w", h, st.Status, err)
		}
	}
}

func requests(n int) string {
	if n == 1 {
		return "1 request"
	}
	return strconv.Itoa(n) + " requests"
}

func (h *HAProxy) output(st ServerState) map[string]any {
	return map[string]any{"balancer": KindHAProxy, "backend": h.Backend, "server": h.Server, "status": st.Status, "in_flight": st.InFlight()}
}

func (h *HAProxy) poll() time.Duration {
	if h.Poll > 0 {
		return h.Poll
	}
	return defaultPoll
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// set sets the server's administrative state: ready, drain or maint.
// HAProxy answers a lone newline when it did; anything else is its
// refusal.
func (h *HAProxy) set(ctx context.Context, state string) error {
	cmd := "set server " + h.Backend + "/" + h.Server + " state " + state
	reply, err := h.command(ctx, cmd)
	if err != nil {
		return err
	}
	if reply = strings.TrimSpace(reply); reply != "" {
		return refused(cmd, reply)
	}
	return nil
}

// refused is HAProxy's refusal of cmd, in its words, with the fix when
// the words are known.
func refused(cmd, reply string) error {
	reply = strings.Join(strings.Fields(reply), " ") // one line
	hint := ""
	switch {
	case strings.HasPrefix(reply, "No such"):
		hint = " (backend and server must name a server of HAProxy's config; the server defaults to the instance's name)"
	case strings.Contains(reply, "Permission denied"):
		hint = " (the stats socket must be at level admin: stats socket <path> mode 660 level admin)"
	}
	return fmt.Errorf("haproxy refused %q: %s%s", cmd, reply, hint)
}

// State reads the server's row of `show stat`.
func (h *HAProxy) State(ctx context.Context) (ServerState, error) {
	cmd := "show stat " + h.Backend + " 4 -1"
	reply, err := h.command(ctx, cmd)
	if err != nil {
		return ServerState{}, err
	}
	if !strings.HasPrefix(reply, "# ") {
		return ServerState{}, refused(cmd, reply)
	}
	r := csv.NewReader(strings.NewReader(reply[2:]))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return ServerState{}, fmt.Errorf("haproxy: %q: unreadable answer: %v", cmd, err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	for _, name := range []string{"pxname", "svname", "status", "scur", "qcur"} {
		if _, ok := col[name]; !ok {
			return ServerState{}, fmt.Errorf("haproxy: %q: no column %s in its answer", cmd, name)
		}
	}
	field := func(row []string, name string) string {
		if i, ok := col[name]; ok && i < len(row) {
			return row[i]
		}
		return ""
	}
	for _, row := range rows[1:] {
		if field(row, "pxname") != h.Backend || field(row, "svname") != h.Server {
			continue
		}
		st := ServerState{Status: field(row, "status")}
		st.Sessions, _ = strconv.Atoi(field(row, "scur"))
		st.Queued, _ = strconv.Atoi(field(row, "qcur"))
		st.Check = field(row, "check_desc")
		if code := field(row, "check_code"); code != "" && st.Check != "" {
			st.Check += " (" + code + ")"
		}
		return st, nil
	}
	return ServerState{}, fmt.Errorf("haproxy has no server %s in backend %s (backend and server must name a server of HAProxy's config; the server defaults to the instance's name)", h.Server, h.Backend)
}

// Drained reports whether the server's administrative state is drain, as
// set by Drain and cleared by Undrain: `show stat` says DOWN, not DRAIN,
// for a drained server whose health check fails, as a stopped instance's
// does, so its status alone cannot tell.
func (h *HAProxy) Drained(ctx context.Context) (bool, error) {
	cmd := "show servers state " + h.Backend
	reply, err := h.command(ctx, cmd)
	if err != nil {
		return false, err
	}
	// A version line, then "# be_id be_name srv_id srv_name srv_addr
	// srv_op_state srv_admin_state …", then a line per server.
	header := false
	var be, sv, adm int
	for _, line := range strings.Split(reply, "\n") {
		fields := strings.Fields(line)
		if len(fields) > 1 && fields[0] == "#" {
			col := map[string]int{}
			for i, name := range fields[1:] {
				col[name] = i
			}
			var ok1, ok2, ok3 bool
			be, ok1 = col["be_name"]
			sv, ok2 = col["srv_name"]
			adm, ok3 = col["srv_admin_state"]
			if header = ok1 && ok2 && ok3; !header {
				return false, fmt.Errorf("haproxy: %q: no column be_name, srv_name or srv_admin_state in its answer", cmd)
			}
			continue
		}
		if !header || len(fields) <= max(be, sv, adm) || fields[be] != h.Backend || fields[sv] != h.Server {
			continue
		}
		state, err := strconv.Atoi(fields[adm])
		if err != nil {
			return false, fmt.Errorf("haproxy: %q: srv_admin_state %q is no number", cmd, fields[adm])
		}
		return state&srvAdminForcedDrain != 0, nil
	}
	if !header {
		return false, refused(cmd, reply)
	}
	return false, fmt.Errorf("haproxy has no server %s in backend %s (backend and server must name a server of HAProxy's config; the server defaults to the instance's name)", h.Server, h.Backend)
}

// srvAdminForcedDrain is HAProxy's SRV_ADMF_FDRAIN: drained from the
// runtime API.
const srvAdminForcedDrain = 0x08

// command sends one command to the runtime API and returns HAProxy's
// whole answer: in non-interactive mode it closes the connection after it.
func (h *HAProxy) command(ctx context.Context, cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", h.Socket)
	if err != nil {
		return "", h.dialError(err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("haproxy socket %s: send %q: %w", h.Socket, cmd, orCause(ctx, err))
	}
	reply, err := io.ReadAll(io.LimitReader(conn, maxReply))
	if err != nil {
		return "", fmt.Errorf("haproxy socket %s: read the answer to %q: %w", h.Socket, cmd, orCause(ctx, err))
	}
	return string(reply), nil
}

func orCause(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// dialError says why the socket cannot be reached, and what to change.
func (h *HAProxy) dialError(err error) error {
	hint := "is HAProxy running?"
	switch {
	case errors.Is(err, fs.ErrNotExist):
		hint = "is HAProxy running, with \"stats socket " + h.Socket + " mode 660 level admin\" in its global section?"
	case errors.Is(err, fs.ErrPermission):
		hint = "the agent's user must be able to read and write it: mode 660 and a group of the agent's user"
	case errors.Is(err, syscall.ECONNREFUSED):
		hint = "nothing listens on it: is HAProxy running?"
	}
	return fmt.Errorf("haproxy socket %s: %v (%s)", h.Socket, err, hint)
}

var _ Balancer = (*HAProxy)(nil)
