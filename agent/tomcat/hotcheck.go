package tomcat

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// checkHot checks, for deploy_mode hot, what a hot install relies on: the
// manager's credential, the manager's context, its user, and the Host of
// conf/server.xml. Each error is one line naming the file and the change.
func (c *config) checkHot() error {
	if c.passwordFile == "" {
		return fmt.Errorf("%s: missing (deploy_mode hot deploys through Tomcat's manager: give a file holding the password of %s %s)", keyManagerPasswordFile, keyManagerUser, c.managerUser)
	}
	fi, err := os.Stat(c.passwordFile)
	if err != nil {
		return fmt.Errorf("%s: %w", keyManagerPasswordFile, err)
	}
	if fi.Mode().Perm()&0o004 != 0 {
		return fmt.Errorf("%s: %s is readable by every user: chmod o-r %s", keyManagerPasswordFile, c.passwordFile, c.passwordFile)
	}
	if _, err := c.manager(); err != nil {
		return err
	}

	conf := filepath.Join(c.base, "conf")
	if !exists(filepath.Join(conf, "Catalina", "localhost", "manager.xml")) &&
		!exists(filepath.Join(c.base, "webapps", "manager")) && !exists(filepath.Join(c.base, "webapps", "manager.war")) {
		return fmt.Errorf("%s: %s has no manager: write %s (see docs/agent.md, \"Hot deploys\"; Debian's manager is in package tomcat10-admin)",
			keyBase, c.base, filepath.Join(conf, "Catalina", "localhost", "manager.xml"))
	}

	users := filepath.Join(conf, "tomcat-users.xml")
	ok, err := hasManagerUser(users, c.managerUser)
	if err != nil {
		return fmt.Errorf("%s: %w", keyManagerUser, err)
	}
	if !ok {
		return fmt.Errorf("%s: %s has no user %q with role manager-script: add <user username=%q password=\"<the password file's>\" roles=\"manager-script\"/>", keyManagerUser, users, c.managerUser, c.managerUser)
	}

	serverXML := filepath.Join(conf, "server.xml")
	hosts, err := hostAttrs(serverXML)
	if err != nil {
		return fmt.Errorf("%s: %w", keyBase, err)
	}
	for _, h := range hosts {
		if h["name"] != "localhost" {
			continue
		}
		if c.autoDeploys() {
			return fmt.Errorf("%s: %s: set autoDeploy=\"false\" on <Host name=\"localhost\"> for deploy_mode hot (Tomcat's own deployer would race the manager for a new WAR)", keyBase, serverXML)
		}
		if strings.EqualFold(h["deployOnStartup"], "false") {
			return fmt.Errorf("%s: %s: remove deployOnStartup=\"false\" from <Host name=\"localhost\"> (Tomcat would start without the app)", keyBase, serverXML)
		}
		return nil
	}
	return fmt.Errorf("%s: %s has no <Host name=\"localhost\">, where the manager deploys (conf/Catalina/localhost)", keyBase, serverXML)
}

// autoDeploys reports whether conf/server.xml's localhost Host has
// autoDeploy on (Tomcat's default), or cannot be read.
func (c *config) autoDeploys() bool {
	hosts, err := hostAttrs(filepath.Join(c.base, "conf", "server.xml"))
	if err != nil {
		return true
	}
	for _, h := range hosts {
		if h["name"] == "localhost" {
			return !strings.EqualFold(h["autoDeploy"], "false")
		}
	}
	return true
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// hasManagerUser reports whether tomcat-users.xml has user with role
// manager-script.
func hasManagerUser(path, user string) (bool, error) {
	found := false
	err := eachElement(path, "user", func(attr map[string]string) {
		if attr["username"] != user {
			return
		}
		roles := strings.Split(attr["roles"], ",")
		for i := range roles {
			roles[i] = strings.TrimSpace(roles[i])
		}
		if slices.Contains(roles, "manager-script") {
			found = true
		}
	})
	return found, err
}

// hostAttrs returns the attributes of every <Host> of server.xml.
func hostAttrs(path string) ([]map[string]string, error) {
	var out []map[string]string
	err := eachElement(path, "Host", func(attr map[string]string) { out = append(out, attr) })
	return out, err
}

// eachElement calls fn with the attributes of each element named local in
// the XML file at path; commented-out elements are not elements.
func eachElement(path, local string, fn func(attr map[string]string)) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s is missing", path)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if el, ok := tok.(xml.StartElement); ok && el.Name.Local == local {
			attr := map[string]string{}
			for _, a := range el.Attr {
				attr[a.Name.Local] = a.Value
			}
			fn(attr)
		}
	}
}
