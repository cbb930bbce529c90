package api

import (
	"slices"
	"strings"
)

// The refusals below are the agent's answers to a step it will not run.
// They live in the protocol so that a client that checks a step without
// sending it (a dry run, against [Services]) says what the agent would.

// Command is an allow-listed command of the agent's config, as a flow
// calls it: i:run("drain", { seconds = 30 }).
type Command struct {
	Name string `json:"name"`
	// Args are the NAMEs of its {arg:NAME} placeholders, sorted: the
	// arguments a run step must give, each of them, and no other.
	Args []string `json:"args"`
}

// CheckArgs refuses the arguments of a run step (its "command" aside) when
// one is not an argument of c or one of c's is missing: a [CodeBadRequest]
// error that names the arguments c takes. It does not look at the values.
func (c Command) CheckArgs(args map[string]any) error {
	names := make([]string, 0, len(args))
	for k := range args {
		if k != "command" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		if !slices.Contains(c.Args, k) {
			return Errorf(CodeBadRequest, "command %s: unknown argument %q (%s)", c.Name, k, c.Takes())
		}
	}
	for _, k := range c.Args {
		if _, ok := args[k]; !ok {
			return Errorf(CodeBadRequest, "command %s: missing argument %q (%s)", c.Name, k, c.Takes())
		}
	}
	return nil
}

// Takes says which arguments c takes: "drain takes seconds".
func (c Command) Takes() string {
	if len(c.Args) == 0 {
		return c.Name + " takes no arguments"
	}
	return c.Name + " takes " + strings.Join(c.Args, ", ")
}

// FindCommand returns the command of name among cmds, or the
// [CodeNotFound] error of a run step whose command is not allow-listed,
// naming those that are.
func FindCommand(cmds []Command, name string) (Command, error) {
	if i := slices.IndexFunc(cmds, func(c Command) bool { return c.Name == name }); i >= 0 {
		return cmds[i], nil
	}
	names := make([]string, len(cmds))
	for i, c := range cmds {
		names[i] = c.Name
	}
	return Command{}, Errorf(CodeNotFound, "command %q is not allow-listed on this agent (commands: %s)", name, orNone(names))
}

// UnknownStep is the [CodeNotFound] error of a step that an instance
// ("A/a1") does not offer: neither one of core, the core steps, nor one of
// its driver's steps.
func UnknownStep(step, instance string, core []string, driver string, steps []DriverStep) *Error {
	names := make([]string, len(steps))
	for i, s := range steps {
		names[i] = s.Name
	}
	return Errorf(CodeNotFound, "unknown step %q for %s (core steps: %s; driver %s steps: %s)",
		step, instance, strings.Join(core, ", "), driver, orNone(names))
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// NoBalancer refuses a drain or undrain of an instance ("A/a1") that has no
// load balancer in the agent's config.
func NoBalancer(step, instance string) *Error {
	service, _, _ := strings.Cut(instance, "/")
	return Errorf(CodeBadRequest, "%s: instance %s has no balancer: add balancer: to services.%s (or to the instance) in agent.yaml", step, instance, service)
}

// NoHotDeploy is the refusal of an install or rollback with mode hot on an
// instance (service/name) whose driver cannot hot deploy.
func NoHotDeploy(step, instance, driver string) *Error {
	return Errorf(CodeBadRequest, "%s: args.mode hot: driver %s of %s cannot hot deploy; use mode restart", step, driver, instance)
}
