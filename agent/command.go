package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/internal/tailbuf"
	"github.com/baepo/baepo/sdk"
)

// command is an allow-listed command of agent.yaml, checked at start-up:
// its program exists and is executable, and every placeholder in its
// arguments is one the agent knows.
type command struct {
	api.Command          // its name and the NAMEs of its {arg:NAME} placeholders, sorted
	argv        []string // the program, then its arguments with their placeholders
}

// placeholderRE finds placeholders: a name in braces. Other braces, as in
// find's {} or a JSON argument, are kept as they are.
var placeholderRE = regexp.MustCompile(`\{[A-Za-z0-9_:-]+\}`)

// argPrefix starts the placeholder of a step argument: {arg:seconds}.
const argPrefix = "arg:"

// instancePlaceholders are the placeholders of the instance a command runs
// for, and how each is filled in.
var instancePlaceholders = map[string]func(sdk.Instance) string{
	"{service}":  func(i sdk.Instance) string { return i.Service },
	"{instance}": func(i sdk.Instance) string { return i.Name },
	"{port}":     func(i sdk.Instance) string { return strconv.Itoa(i.Port) },
}

// placeholderList names every placeholder, for errors; docs/agent.md
// explains each.
const placeholderList = "{service}, {instance}, {port}, {arg:NAME}"

// parseCommand checks the command of agent.yaml called name, argv as
// written there. Its errors leave naming the key to the caller.
func parseCommand(name string, argv []string) (command, error) {
	c := command{Command: api.Command{Name: name}, argv: argv}
	if len(argv) == 0 || !filepath.IsAbs(argv[0]) {
		return c, errors.New("give the program as an absolute path first, then its arguments")
	}
	if placeholderRE.MatchString(argv[0]) {
		return c, fmt.Errorf("%s: the program cannot hold placeholders", argv[0])
	}
	fi, err := os.Stat(argv[0])
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return c, fmt.Errorf("%s does not exist", argv[0])
	case err != nil:
		return c, err
	case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
		return c, fmt.Errorf("%s is not an executable file", argv[0])
	}
	for _, a := range argv[1:] {
		for _, p := range placeholderRE.FindAllString(a, -1) {
			if _, ok := instancePlaceholders[p]; ok {
				continue
			}
			arg, ok := strings.CutPrefix(p[1:len(p)-1], argPrefix)
			if !ok || !validName(arg) {
				return c, fmt.Errorf("unknown placeholder %s in %q (placeholders: %s; NAME is letters, digits, - and _)", p, a, placeholderList)
			}
			if arg == "command" {
				return c, fmt.Errorf("%s: command is the name of the command, not an argument", p)
			}
			if !slices.Contains(c.Args, arg) {
				c.Args = append(c.Args, arg)
			}
		}
	}
	slices.Sort(c.Args)
	return c, nil
}

// values checks the arguments of a run step against the command's
// {arg:NAME} placeholders (api.Command.CheckArgs) and returns their values
// as text. A value is one argv element, never a shell word: it is a
// string, number or boolean without control characters, and may not begin
// with "-", where a program would take it for an option.
func (c command) values(args map[string]any) (map[string]string, error) {
	if err := c.CheckArgs(args); err != nil {
		return nil, err
	}
	vals := map[string]string{}
	for _, k := range c.Args {
		var v string
		switch x := args[k].(type) {
		case string:
			v = x
		case float64:
			v = strconv.FormatFloat(x, 'f', -1, 64)
		case int, int64, bool:
			v = fmt.Sprint(x)
		default:
			return nil, api.Errorf(api.CodeBadRequest, "command %s: argument %s must be a string, a number or a boolean", c.Name, k)
		}
		if strings.HasPrefix(v, "-") || strings.ContainsFunc(v, unicode.IsControl) {
			return nil, api.Errorf(api.CodeBadRequest, "command %s: argument %s %q may not begin with - or hold control characters", c.Name, k, v)
		}
		vals[k] = v
	}
	return vals, nil
}

// expand returns the command's argv for inst, placeholders filled in. It
// replaces in one pass: a value that holds a placeholder stays as it is.
func (c command) expand(inst sdk.Instance, vals map[string]string) []string {
	argv := slices.Clone(c.argv)
	for i := 1; i < len(argv); i++ {
		argv[i] = placeholderRE.ReplaceAllStringFunc(argv[i], func(p string) string {
			if fill, ok := instancePlaceholders[p]; ok {
				return fill(inst)
			}
			return vals[strings.TrimPrefix(p[1:len(p)-1], argPrefix)]
		})
	}
	return argv
}

// runCommand runs an allow-listed command of agent.yaml with its
// placeholders filled in, as argv: no shell ever sees it.
func (a *Agent) runCommand(ctx context.Context, inst *instance, args map[string]any) (api.StepResult, error) {
	name, _ := args["command"].(string)
	c := a.cfg.commands[name]
	vals, err := c.values(args)
	if err != nil {
		return api.StepResult{}, err
	}
	argv := c.expand(inst.spec, vals)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	buf := tailbuf.Buffer{Max: 64 << 10}
	cmd.Stdout, cmd.Stderr = &buf, &buf
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	text := buf.String()
	if err != nil {
		return api.StepResult{}, fmt.Errorf("run %s on %s: %w\n%s", name, inst, err, text)
	}
	return api.StepResult{Message: "ran " + name, Output: map[string]any{"output": text}}, nil
}
