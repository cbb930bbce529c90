package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/baepo/baepo/engine"
)

// Inventory is the client's map of the fleet: every server's agent and
// credentials, and named groups of servers.
type Inventory struct {
	File    string              // the path it was read from, as given
	Servers map[string]Server   // by name
	Groups  map[string][]string // group name → server and group names
}

// Server is one host with an agent. TokenFile and CA are resolved against
// the inventory file's directory.
type Server struct {
	Name      string
	Agent     string // base URL of the agent: http(s)://host:port
	TokenFile string // file holding the bearer token
	TokenEnv  string // or the environment variable holding it
	CA        string // PEM bundle to verify the agent's certificate; "" = system roots
	Cert, Key string // client certificate and key, for agents that require mTLS
}

// inventoryFile and serverEntry are the YAML shape of inventory.yaml.
type inventoryFile struct {
	Servers map[string]serverEntry `yaml:"servers"`
	Groups  map[string][]string    `yaml:"groups"`
}

type serverEntry struct {
	Agent     string `yaml:"agent"`
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	CA        string `yaml:"ca"`
	Cert      string `yaml:"cert"`
	Key       string `yaml:"key"`
}

// knownKeys names the keys each YAML level accepts, for unknown-key errors.
var knownKeys = map[string]string{
	"inventoryFile": "servers, groups",
	"serverEntry":   "agent, token_file, token_env, ca, cert, key",
}

// LoadInventory reads and checks an inventory file. Every problem is a
// [engine.UsageError] (exit 2) whose lines read "file:line: message".
func LoadInventory(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, usagef("inventory %s: no such file (pass --inventory FILE or set BAEPO_INVENTORY)", path)
	}
	if err != nil {
		return nil, usagef("inventory %s: %v", path, err)
	}
	var raw inventoryFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		return nil, &engine.UsageError{Msg: strings.Join(yamlProblems(path, err), "\n")}
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root) // decoded above; only for line numbers
	lines := keyLines(&root)

	inv := &Inventory{File: path, Servers: map[string]Server{}, Groups: map[string][]string{}}
	dir := filepath.Dir(path)
	var problems []problem
	add := func(key []string, format string, args ...any) {
		problems = append(problems, problem{lines.of(key...), fmt.Sprintf(format, args...)})
	}
	if len(raw.Servers) == 0 {
		add([]string{"servers"}, "no servers: add servers: { NAME: { agent: \"https://HOST:7701\", token_file: FILE } }")
	}
	for name, e := range raw.Servers {
		key := []string{"servers", name}
		if err := checkName(name); err != nil {
			add(key, "server %q: %v", name, err)
			continue
		}
		if err := checkAgentURL(e.Agent); err != nil {
			add(append(key, "agent"), "server %s: %v", name, err)
		}
		switch {
		case e.TokenFile == "" && e.TokenEnv == "":
			add(key, "server %s: no token: set token_file: FILE or token_env: VARIABLE", name)
		case e.TokenFile != "" && e.TokenEnv != "":
			add(append(key, "token_env"), "server %s: token_file and token_env are both set: keep one", name)
		}
		if (e.Cert == "") != (e.Key == "") {
			add(key, "server %s: cert and key go together: set both for mTLS, or neither", name)
		}
		inv.Servers[name] = Server{
			Name:      name,
			Agent:     strings.TrimRight(e.Agent, "/"),
			TokenFile: resolvePath(dir, e.TokenFile),
			TokenEnv:  e.TokenEnv,
			CA:        resolvePath(dir, e.CA),
			Cert:      resolvePath(dir, e.Cert),
			Key:       resolvePath(dir, e.Key),
		}
	}
	for name, members := range raw.Groups {
		key := []string{"groups", name}
		if err := checkName(name); err != nil {
			add(key, "group %q: %v", name, err)
			continue
		}
		if _, ok := raw.Servers[name]; ok {
			add(key, "group %s has the name of a server: rename one", name)
			continue
		}
		if len(members) == 0 {
			add(key, "group %s is empty: list server or group names, or remove it", name)
			continue
		}
		for _, m := range members {
			_, isServer := raw.Servers[m]
			_, isGroup := raw.Groups[m]
			if !isServer && !isGroup {
				add(key, "group %s: unknown member %q (servers: %s; groups: %s)", name, m, listOrNone(mapKeys(raw.Servers)), listOrNone(mapKeys(raw.Groups)))
			}
		}
		inv.Groups[name] = members
	}
	if len(problems) == 0 {
		for _, name := range mapKeys(inv.Groups) {
			if cycle := inv.cycle(name, nil); cycle != nil {
				add([]string{"groups", name}, "groups form a cycle: %s", strings.Join(cycle, " → "))
				break
			}
		}
	}
	if len(problems) > 0 {
		slices.SortFunc(problems, func(a, b problem) int {
			if a.line != b.line {
				return a.line - b.line
			}
			return strings.Compare(a.msg, b.msg)
		})
		msgs := make([]string, len(problems))
		for i, p := range problems {
			msgs[i] = fmt.Sprintf("%s:%d: %s", path, p.line, p.msg)
		}
		return nil, &engine.UsageError{Msg: strings.Join(msgs, "\n")}
	}
	return inv, nil
}

type problem struct {
	line int
	msg  string
}

// cycle returns the path of a group cycle through name, or nil.
func (inv *Inventory) cycle(name string, path []string) []string {
	if i := slices.Index(path, name); i >= 0 {
		return append(slices.Clone(path[i:]), name)
	}
	path = append(path, name)
	for _, m := range inv.Groups[name] {
		if _, ok := inv.Groups[m]; ok {
			if c := inv.cycle(m, path); c != nil {
				return c
			}
		}
	}
	return nil
}

// Resolve turns a --server value, comma separated server and group names,
// into unique server names in the order they were first named.
func (inv *Inventory) Resolve(names string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	var expand func(name string)
	var unknown []string
	expand = func(name string) {
		if _, ok := inv.Servers[name]; ok {
			if !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
			return
		}
		members, ok := inv.Groups[name]
		if !ok {
			unknown = append(unknown, name)
			return
		}
		for _, m := range members {
			expand(m)
		}
	}
	for name := range strings.SplitSeq(names, ",") {
		if name = strings.TrimSpace(name); name != "" {
			expand(name)
		}
	}
	switch {
	case len(unknown) == 1:
		return nil, usagef("--server: unknown server or group %q in %s (servers: %s; groups: %s)", unknown[0], inv.File, listOrNone(mapKeys(inv.Servers)), listOrNone(mapKeys(inv.Groups)))
	case len(unknown) > 1:
		return nil, usagef("--server: unknown servers or groups %s in %s (servers: %s; groups: %s)", strings.Join(unknown, ", "), inv.File, listOrNone(mapKeys(inv.Servers)), listOrNone(mapKeys(inv.Groups)))
	case len(out) == 0:
		return nil, usagef("--server is empty: give server or group names from %s, comma separated", inv.File)
	}
	return out, nil
}

// Token reads the server's bearer token from its file or environment
// variable, without surrounding white space.
func (s Server) Token(getenv func(string) string) (string, error) {
	if s.TokenEnv != "" {
		tok := strings.TrimSpace(getenv(s.TokenEnv))
		if tok == "" {
			return "", usagef("server %s: token_env %s is not set or empty (export it, e.g. from a Jenkins credential)", s.Name, s.TokenEnv)
		}
		return tok, nil
	}
	if s.TokenFile == "" {
		return "", usagef("server %s: no token: set token_file or token_env in the inventory", s.Name)
	}
	data, err := os.ReadFile(s.TokenFile)
	if errors.Is(err, fs.ErrNotExist) {
		return "", usagef("server %s: token_file %s: no such file (copy the agent's token there or fix the inventory)", s.Name, s.TokenFile)
	}
	if err != nil {
		return "", usagef("server %s: read token_file: %v", s.Name, err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", usagef("server %s: token_file %s is empty (copy the agent's token there)", s.Name, s.TokenFile)
	}
	return tok, nil
}

var badName = regexp.MustCompile(`[,\s]`)

func checkName(name string) error {
	if name == "" || badName.MatchString(name) {
		return errors.New("names must be non-empty and hold no commas or spaces")
	}
	return nil
}

func checkAgentURL(raw string) error {
	if raw == "" {
		return errors.New(`no agent: set agent: "https://HOST:7701"`)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("agent %q must be an http:// or https:// URL such as https://10.0.0.11:7701", raw)
	}
	return nil
}

func resolvePath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// yamlLineRE matches the line numbers of yaml.v3's messages.
var (
	yamlLineRE    = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	yamlUnknownRE = regexp.MustCompile(`^field (\S+) not found in type \S*?\.?(\w+)$`)
)

// yamlTypeNames names the Go types of yaml.v3's messages for people.
var yamlTypeNames = strings.NewReplacer(
	"client.serverEntry", "a server { agent: URL, token_file: FILE }",
	"client.inventoryFile", "an inventory { servers: ..., groups: ... }",
	"map[string]client.serverEntry", "servers { NAME: { agent: URL, token_file: FILE } }",
	"map[string][]string", "groups { NAME: [server, ...] }",
	"[]string", "a list of server and group names",
)

// yamlProblems rewrites a yaml.v3 decode error as "file:line: message" lines.
func yamlProblems(path string, err error) []string {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	out := make([]string, len(msgs))
	for i, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		line := "1"
		if sub := yamlLineRE.FindStringSubmatch(m); sub != nil {
			line, m = sub[1], sub[2]
		}
		if sub := yamlUnknownRE.FindStringSubmatch(m); sub != nil {
			m = fmt.Sprintf("unknown key %q (known: %s)", sub[1], knownKeys[sub[2]])
		}
		m = yamlTypeNames.Replace(m)
		out[i] = fmt.Sprintf("%s:%s: %s", path, line, m)
	}
	return out
}

// keyLines records the line of every key of the document's first three
// levels: servers, a server's name, a server's fields; groups, a group's name.
func keyLines(root *yaml.Node) lineIndex {
	lines := lineIndex{}
	var walk func(n *yaml.Node, path []string)
	walk = func(n *yaml.Node, path []string) {
		if n.Kind != yaml.MappingNode || len(path) >= 3 {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := append(slices.Clone(path), n.Content[i].Value)
			lines[strings.Join(key, "\x00")] = n.Content[i].Line
			walk(n.Content[i+1], key)
		}
	}
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		walk(root.Content[0], nil)
	}
	return lines
}

// lineIndex maps a key path, joined by NUL, to its line.
type lineIndex map[string]int

// of returns the line of the key path, or of its nearest parent present in
// the file, or 1.
func (l lineIndex) of(path ...string) int {
	for n := len(path); n > 0; n-- {
		if line, ok := l[strings.Join(path[:n], "\x00")]; ok {
			return line
		}
	}
	return 1
}

func mapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func usagef(format string, args ...any) error {
	return &engine.UsageError{Msg: fmt.Sprintf(format, args...)}
}
