package tomcat

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/proc"
)

// Install puts rel's artifact in place as webapps/<name>.war, where name is
// Tomcat's name for the instance's context path: ROOT for "/", app for
// "/app", shop#cart for "/shop/cart". The WAR is copied to a temporary file
// in webapps/ that Tomcat ignores, synced, and renamed over the old one, so
// Tomcat never sees half a WAR; the old exploded directory goes first so
// that Tomcat unpacks the new WAR. The flows stop the instance first; a
// running Tomcat redeploys the new WAR by itself.
func (d *Driver) Install(ctx context.Context, inst sdk.Instance, rel sdk.Release) (sdk.Result, error) {
	fail := func(err error) (sdk.Result, error) {
		return sdk.Result{}, fmt.Errorf("install release %s on instance %s: %w", rel.ID, instName(inst), err)
	}
	c, err := load(inst)
	if err != nil {
		return fail(err)
	}
	name, err := webappName(inst.Context)
	if err != nil {
		return fail(err)
	}
	webapps := filepath.Join(c.base, "webapps")
	war := filepath.Join(webapps, name+".war")
	found, err := c.lookup()
	if err != nil {
		return fail(err)
	}
	running := found.PID > 0

	sdk.Progress(ctx, fmt.Sprintf("copying %s to %s", rel.Artifact, war))
	tmp, err := proc.CopyTemp(ctx, rel.Artifact, webapps)
	if err != nil {
		return fail(err)
	}
	defer os.Remove(tmp) // after the rename, a no-op

	if err := os.RemoveAll(filepath.Join(webapps, name)); err != nil {
		return fail(fmt.Errorf("remove the old exploded webapp: %w", err))
	}
	if !running {
		// Compiled JSPs of the old release; a running Tomcat removes them
		// itself when it redeploys.
		if err := os.RemoveAll(filepath.Join(c.base, "work", "Catalina", "localhost", name)); err != nil {
			return fail(fmt.Errorf("remove the old work directory: %w", err))
		}
	}
	if err := os.Rename(tmp, war); err != nil {
		return fail(err)
	}
	if err := proc.SyncDir(webapps); err != nil {
		return fail(err)
	}
	msg := fmt.Sprintf("installed %s as %s", displayName(rel), war)
	if running {
		msg += " (Tomcat is running and redeploys it)"
	}
	return sdk.Result{Message: msg, Output: map[string]string{"war": war, "context": inst.Context}}, nil
}

// webappName is Tomcat's base name in webapps/ for a context path.
func webappName(context string) (string, error) {
	if context == "/" || context == "" {
		return "ROOT", nil
	}
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("context %q: %s", context, why)
	}
	if !strings.HasPrefix(context, "/") {
		return bad(`must be "/" or a path like /app`)
	}
	p := strings.TrimSuffix(context[1:], "/")
	for _, seg := range strings.Split(p, "/") {
		switch {
		case seg == "" || seg == ".":
			return bad("has an empty or . segment")
		case strings.ContainsAny(seg, "#\\\x00"):
			return bad(`must not contain "#", "\" or NUL`)
		}
	}
	if strings.Contains(p, "..") {
		return bad(`must not contain ".."`)
	}
	return strings.ReplaceAll(p, "/", "#"), nil
}

func displayName(rel sdk.Release) string {
	switch {
	case rel.Name != "" && rel.ID != "":
		return fmt.Sprintf("release %s (%s)", rel.ID, rel.Name)
	case rel.ID != "":
		return "release " + rel.ID
	}
	return rel.Artifact
}
