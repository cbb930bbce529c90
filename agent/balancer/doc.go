// Package balancer takes an instance out of a load balancer's rotation
// before it stops (drain) and puts it back once it serves (undrain). It
// owns two ways to reach a balancer: HAProxy's runtime API over its stats
// socket ([HAProxy]), and allow-listed commands of agent.yaml for every
// other balancer ([Command]), run with their placeholders already filled
// in.
//
// It knows nothing of the agent's config, its steps or its instances: the
// agent builds a [Balancer] per instance and calls it under the instance's
// lock.
package balancer
