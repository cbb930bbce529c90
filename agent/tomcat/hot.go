package tomcat

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/baepo/baepo/internal/crashpoint"
	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/proc"
)

// A hot install places a release as webapps/<name>##<version>.war beside
// the running one (Tomcat's parallel deployment) and has the manager
// deploy it. Tomcat sends requests without a session to the newest started
// version, comparing versions as plain strings, and keeps each session on
// its version. So a version is an activation sequence, then the release id:
// 000007-20260102T150405.000Z-ab12cd34. The sequence is one more than the
// highest in webapps/ or deployed, so that the release installed last,
// a rollback's too, sorts newest; release ids alone would sort a rollback
// oldest.

// seqDigits is the width of a version's sequence: versions sort as strings.
const seqDigits = 6

// version is a version of the instance's context, as named in webapps/ or
// listed by the manager.
type version string

// seq is the version's activation sequence, 0 for a version baepo did not
// make.
func (v version) seq() int {
	s, _, ok := strings.Cut(string(v), "-")
	if !ok || len(s) != seqDigits {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0
	}
	return n
}

// release is the release id in the version, "" for a version baepo did
// not make.
func (v version) release() string {
	if v.seq() == 0 {
		return ""
	}
	return string(v)[seqDigits+1:]
}

func makeVersion(seq int, releaseID string) version {
	return version(fmt.Sprintf("%0*d-%s", seqDigits, seq, releaseID))
}

// checkReleaseID refuses a release id Tomcat cannot carry in a version:
// the agent's ids are letters, digits, ".", "-" and "_".
func checkReleaseID(id string) error {
	if id == "" || strings.ContainsFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_')
	}) {
		return fmt.Errorf("release id %q cannot name a Tomcat version: use letters, digits, '.', '-' and '_'", id)
	}
	return nil
}

// placed lists the versions of the context in webapps/: each WAR or
// exploded directory <name>##<version>, and <name>.war or <name> as
// version "". Hidden files and baepo's temp copies are not versions.
func placed(webapps, name string) (map[version]bool, error) {
	entries, err := os.ReadDir(webapps)
	if err != nil {
		return nil, err
	}
	out := map[version]bool{}
	for _, e := range entries {
		base := strings.TrimSuffix(e.Name(), ".war")
		if base == name {
			out[""] = true
		} else if v, ok := strings.CutPrefix(base, name+"##"); ok && v != "" {
			out[version(v)] = true
		}
	}
	return out, nil
}

// fileName is the base name of a version in webapps/: add ".war" for its WAR.
func fileName(name string, v version) string {
	if v == "" {
		return name
	}
	return name + "##" + string(v)
}

// removePlaced removes a version's WAR, exploded directory and, when
// Tomcat is stopped, its compiled JSPs.
func (c *config) removePlaced(name string, v version, running bool) error {
	webapps := filepath.Join(c.base, "webapps")
	paths := []string{filepath.Join(webapps, fileName(name, v)+".war"), filepath.Join(webapps, fileName(name, v))}
	if !running {
		paths = append(paths, filepath.Join(c.base, "work", "Catalina", "localhost", fileName(name, v)))
	}
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("remove version %q: %w", v, err)
		}
	}
	return nil
}

// nextSeq is one more than the highest sequence placed or deployed.
func nextSeq(onDisk map[version]bool, live []deployed) int {
	top := 0
	for v := range onDisk {
		top = max(top, v.seq())
	}
	for _, d := range live {
		top = max(top, version(d.version).seq())
	}
	return top + 1
}

// hotInstall is Install with rel.Hot.
func hotInstall(ctx context.Context, c *config, rel sdk.Release, found proc.Found) (sdk.Result, error) {
	name, err := webappName(c.contextPath)
	if err != nil {
		return sdk.Result{}, err
	}
	if err := checkReleaseID(rel.ID); err != nil {
		return sdk.Result{}, err
	}
	if found.PID <= 0 {
		return hotPlace(ctx, c, name, rel)
	}
	m, err := c.manager()
	if err != nil {
		return sdk.Result{}, err
	}
	live, err := m.list(ctx, c.managerPath(), name)
	if err != nil {
		return sdk.Result{}, err
	}

	// The release still runs (a rollback before retire, or an install
	// repeated after a crash): undeploying the newer versions sends new
	// requests back to it at once.
	if res, ok, err := c.reactivate(ctx, m, name, rel, live); ok || err != nil {
		return res, err
	}

	webapps := filepath.Join(c.base, "webapps")
	onDisk, err := placed(webapps, name)
	if err != nil {
		return sdk.Result{}, err
	}
	// What an earlier attempt left of this release (a version that failed to
	// start, a WAR the manager never deployed) goes first.
	for _, d := range live {
		if v := version(d.version); v.release() == rel.ID {
			if err := m.undeploy(ctx, c.managerPath(), d.version); err != nil && !isNoContext(err) {
				return sdk.Result{}, err
			}
			delete(onDisk, v)
		}
	}
	for v := range onDisk {
		if v.release() == rel.ID {
			if err := c.removePlaced(name, v, true); err != nil {
				return sdk.Result{}, err
			}
		}
	}

	v := makeVersion(nextSeq(onDisk, live), rel.ID)
	war := filepath.Join(webapps, fileName(name, v)+".war")
	if _, err := proc.Install(ctx, rel, war, nil); err != nil {
		return sdk.Result{}, err
	}
	crashpoint.At("install-copied")
	sdk.Progress(ctx, fmt.Sprintf("deploying %s as version %s through Tomcat's manager", war, v))
	if _, err := m.deploy(ctx, c.managerPath(), string(v), war); err != nil {
		// Tomcat keeps a version that failed to start, stopped: undeploy
		// it, even when ctx is done, so that nothing half-deployed stays
		// and no late start takes the traffic.
		cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), managerCallTimeout)
		defer cancel()
		if uerr := m.undeploy(cleanup, c.managerPath(), string(v)); uerr != nil && !isNoContext(uerr) {
			err = errors.Join(err, fmt.Errorf("undeploy the failed version: %w", uerr))
		}
		if rerr := c.removePlaced(name, v, true); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return sdk.Result{}, proc.WithLogTail(fmt.Errorf("deploy version %s: %w; the versions deployed before keep serving", v, err), c.catalinaOut())
	}
	old := running(live)
	res := sdk.Result{
		Message: fmt.Sprintf("deployed %s as version %s without a restart (pid %d): new sessions go to it", releaseLabel(rel), v, found.PID),
		Output:  map[string]string{"war": war, "context": c.contextPath, "version": string(v), "pid": strconv.Itoa(found.PID)},
	}
	if len(old) > 0 {
		res.Message += fmt.Sprintf("; %d older version(s) keep their sessions until retire", len(old))
	}
	return res, nil
}

// reactivate makes the newest running version of rel the newest version of
// all by undeploying the versions newer than it. ok is false when no
// version of rel runs.
func (c *config) reactivate(ctx context.Context, m *manager, name string, rel sdk.Release, live []deployed) (res sdk.Result, ok bool, err error) {
	var mine version
	for _, d := range live {
		if v := version(d.version); d.running && v.release() == rel.ID && v > mine {
			mine = v
		}
	}
	if mine == "" {
		return sdk.Result{}, false, nil
	}
	var gone []string
	dropped := 0
	for _, d := range live {
		if version(d.version) <= mine {
			continue
		}
		sdk.Progress(ctx, fmt.Sprintf("undeploying version %s (%d sessions)", d.version, d.sessions))
		if err := m.undeploy(ctx, c.managerPath(), d.version); err != nil && !isNoContext(err) {
			return sdk.Result{}, true, err
		}
		gone = append(gone, d.version)
		dropped += d.sessions
	}
	// WARs of newer versions the manager never deployed must not come up
	// at the next start.
	onDisk, err := placed(filepath.Join(c.base, "webapps"), name)
	if err != nil {
		return sdk.Result{}, true, err
	}
	for v := range onDisk {
		if v > mine {
			if err := c.removePlaced(name, v, true); err != nil {
				return sdk.Result{}, true, err
			}
		}
	}
	msg := fmt.Sprintf("%s runs as version %s: it serves again without a restart", releaseLabel(rel), mine)
	if len(gone) > 0 {
		slices.Sort(gone)
		msg += fmt.Sprintf(" (undeployed %s, dropping %d sessions)", strings.Join(gone, ", "), dropped)
	}
	return sdk.Result{Message: msg, Output: map[string]string{"context": c.contextPath, "version": string(mine), "undeployed": strings.Join(gone, " ")}}, true, nil
}

// hotPlace is a hot install while Tomcat is stopped: the release becomes
// the only version in webapps/, so that the next start serves it.
func hotPlace(ctx context.Context, c *config, name string, rel sdk.Release) (sdk.Result, error) {
	webapps := filepath.Join(c.base, "webapps")
	onDisk, err := placed(webapps, name)
	if err != nil {
		return sdk.Result{}, err
	}
	v := makeVersion(nextSeq(onDisk, nil), rel.ID)
	war := filepath.Join(webapps, fileName(name, v)+".war")
	res, err := proc.Install(ctx, rel, war, func(string) error {
		crashpoint.At("install-copied")
		for old := range onDisk {
			if err := c.removePlaced(name, old, false); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return sdk.Result{}, err
	}
	res.Message += " (Tomcat is stopped: the next start serves it alone)"
	res.Output = map[string]string{"war": war, "context": c.contextPath, "version": string(v)}
	return res, nil
}

// running lists the running versions.
func running(live []deployed) []deployed {
	var out []deployed
	for _, d := range live {
		if d.running {
			out = append(out, d)
		}
	}
	return out
}

func releaseLabel(rel sdk.Release) string {
	if rel.Name != "" {
		return "release " + rel.ID + " (" + rel.Name + ")"
	}
	return "release " + rel.ID
}

// retirePoll is how often retire asks the manager for sessions.
const retirePoll = 250 * time.Millisecond

// retire is the custom step "retire": it undeploys each version older than
// the newest running one once its sessions reach 0, or when drain has
// passed, and says what it dropped.
func retire(ctx context.Context, c *config, drain time.Duration, found proc.Found) (sdk.Result, error) {
	name, err := webappName(c.contextPath)
	if err != nil {
		return sdk.Result{}, err
	}
	if found.PID <= 0 {
		return retireStopped(c, name)
	}
	m, err := c.manager()
	if err != nil {
		return sdk.Result{}, err
	}
	live, err := m.list(ctx, c.managerPath(), name)
	if err != nil {
		return sdk.Result{}, err
	}
	var newest version
	seen := false
	for _, d := range running(live) {
		if v := version(d.version); !seen || v > newest {
			newest, seen = v, true
		}
	}
	if !seen {
		return sdk.Result{}, fmt.Errorf("no version of %s runs: nothing to retire to (see the manager's list, and catalina.out)", c.contextPath)
	}
	deadline := time.Now().Add(drain)
	var retired []string
	for {
		var waiting []deployed
		for _, d := range live {
			if version(d.version) >= newest {
				continue
			}
			if d.sessions > 0 && d.running && time.Now().Before(deadline) {
				waiting = append(waiting, d)
				continue
			}
			if err := m.undeploy(ctx, c.managerPath(), d.version); err != nil && !isNoContext(err) {
				return sdk.Result{}, fmt.Errorf("retire version %q: %w", d.version, err)
			}
			what := fmt.Sprintf("%q (no sessions)", d.version)
			if d.sessions > 0 {
				what = fmt.Sprintf("%q (%d sessions dropped after %s)", d.version, d.sessions, drain)
			}
			retired = append(retired, what)
			sdk.Progress(ctx, "undeployed version "+what)
		}
		if len(waiting) == 0 {
			break
		}
		n := 0
		for _, d := range waiting {
			n += d.sessions
		}
		sdk.Progress(ctx, fmt.Sprintf("waiting for %d sessions of %d older version(s) to end, until %s", n, len(waiting), deadline.Format(time.TimeOnly)))
		select {
		case <-ctx.Done():
			return sdk.Result{}, fmt.Errorf("retire: wait for sessions to end: %w", context.Cause(ctx))
		case <-time.After(min(retirePoll, time.Until(deadline)+time.Millisecond)):
		}
		if live, err = m.list(ctx, c.managerPath(), name); err != nil {
			return sdk.Result{}, err
		}
	}
	// WARs of older versions Tomcat never deployed must not come up at the
	// next start.
	onDisk, err := placed(filepath.Join(c.base, "webapps"), name)
	if err != nil {
		return sdk.Result{}, err
	}
	for v := range onDisk {
		if v < newest {
			if err := c.removePlaced(name, v, true); err != nil {
				return sdk.Result{}, err
			}
		}
	}
	out := map[string]string{"version": string(newest), "retired": strconv.Itoa(len(retired))}
	if len(retired) == 0 {
		return sdk.Result{Message: fmt.Sprintf("nothing to retire: version %q is the only one deployed", newest), Output: out}, nil
	}
	return sdk.Result{Message: fmt.Sprintf("retired %s; version %q serves", strings.Join(retired, ", "), newest), Output: out}, nil
}

// retireStopped is retire while Tomcat is stopped: only the newest
// version's files stay in webapps/.
func retireStopped(c *config, name string) (sdk.Result, error) {
	onDisk, err := placed(filepath.Join(c.base, "webapps"), name)
	if err != nil {
		return sdk.Result{}, err
	}
	vs := make([]version, 0, len(onDisk))
	for v := range onDisk {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	if len(vs) <= 1 {
		return sdk.Result{Message: "Tomcat is stopped and webapps/ holds one version or none: nothing to retire"}, nil
	}
	var gone []string
	for _, v := range vs[:len(vs)-1] {
		if err := c.removePlaced(name, v, false); err != nil {
			return sdk.Result{}, err
		}
		gone = append(gone, strconv.Quote(string(v)))
	}
	return sdk.Result{Message: fmt.Sprintf("Tomcat is stopped: removed version(s) %s from webapps/; %q stays", strings.Join(gone, ", "), vs[len(vs)-1])}, nil
}

// managerPath is the context path as the manager's path parameter takes it.
func (c *config) managerPath() string {
	if p := strings.TrimSuffix(c.contextPath, "/"); p != "" {
		return p
	}
	return "/"

}
