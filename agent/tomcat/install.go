package tomcat

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/baepo/baepo/internal/crashpoint"
	"github.com/baepo/baepo/sdk"
	"github.com/baepo/baepo/sdk/proc"
)

// install is Install: it puts rel's artifact in place as
// webapps/<name>.war, where name is Tomcat's name for the instance's
// context path: ROOT for "/", app for "/app", shop#cart for "/shop/cart".
// The WAR is copied to a temporary file in webapps/ that Tomcat ignores,
// synced, and renamed over the old one (proc.Install), so Tomcat never sees
// half a WAR; the old exploded directory goes just before the rename, so
// that Tomcat unpacks the new WAR. The flows stop the instance first; a
// running Tomcat redeploys the new WAR by itself when its Host has
// autoDeploy on.
//
// With rel.Hot it is hotInstall (hot.go). Without, it also removes the
// versions hot installs placed (webapps/<name>##<version>.war and their
// directories), so that a switch between modes leaves one WAR.
func install(ctx context.Context, c *config, rel sdk.Release, found proc.Found) (sdk.Result, error) {
	if rel.Hot {
		return hotInstall(ctx, c, rel, found)
	}
	name, err := webappName(c.contextPath)
	if err != nil {
		return sdk.Result{}, err
	}
	webapps := filepath.Join(c.base, "webapps")
	war := filepath.Join(webapps, name+".war")
	running := found.PID > 0
	onDisk, err := placed(webapps, name)
	if err != nil {
		return sdk.Result{}, err
	}
	res, err := proc.Install(ctx, rel, war, func(string) error {
		crashpoint.At("install-copied")
		if err := os.RemoveAll(filepath.Join(webapps, name)); err != nil {
			return fmt.Errorf("remove the old exploded webapp: %w", err)
		}
		for v := range onDisk {
			if v != "" {
				if err := c.removePlaced(name, v, running); err != nil {
					return err
				}
			}
		}
		if running {
			return nil
		}
		// Compiled JSPs of the old release; a running Tomcat removes them
		// itself when it redeploys.
		if err := os.RemoveAll(filepath.Join(c.base, "work", "Catalina", "localhost", name)); err != nil {
			return fmt.Errorf("remove the old work directory: %w", err)
		}
		return nil
	})
	if err != nil {
		return sdk.Result{}, err
	}
	if running {
		if c.autoDeploys() {
			res.Message += " (Tomcat is running and redeploys it)"
		} else {
			res.Message += " (Tomcat is running with autoDeploy=\"false\": the next start serves it)"
		}
	}
	res.Output = map[string]string{"war": war, "context": c.contextPath}
	return res, nil
}

// tempPattern matches the temporary files proc.CopyTemp makes in webapps/.
const tempPattern = ".baepo-*.tmp"

// CleanLeftovers removes the temporary copies of WARs (".baepo-*.tmp")
// that installs interrupted by a crash left in the instance's webapps/,
// and returns their paths. The agent calls it when it starts, before any
// install runs. Only regular files go: a symlink or a directory of that
// name is left alone, never followed.
func (d *Driver) CleanLeftovers(ctx context.Context, inst sdk.Instance) ([]string, error) {
	c, err := parseConfig(inst)
	if err != nil {
		return nil, fmt.Errorf("clean webapps of instance %s: %w", instName(inst), err)
	}
	webapps := filepath.Join(c.base, "webapps")
	entries, err := os.ReadDir(webapps)
	if err != nil {
		return nil, fmt.Errorf("clean webapps of instance %s: %w", instName(inst), err)
	}
	var removed []string
	for _, e := range entries {
		// ReadDir's type is lstat's: a symlink is a symlink here.
		if ok, _ := filepath.Match(tempPattern, e.Name()); !ok || e.Type()&fs.ModeType != 0 {
			continue
		}
		p := filepath.Join(webapps, e.Name())
		if err := os.Remove(p); err != nil {
			return removed, fmt.Errorf("clean webapps of instance %s: %w", instName(inst), err)
		}
		removed = append(removed, p)
	}
	if len(removed) > 0 {
		if err := proc.SyncDir(webapps); err != nil {
			return removed, fmt.Errorf("clean webapps of instance %s: %w", instName(inst), err)
		}
	}
	return removed, nil
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
