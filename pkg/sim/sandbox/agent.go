package sandbox

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/come2us/opsctl/pkg/agent"
	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/metrics"
	"github.com/come2us/opsctl/pkg/redrive"
	"github.com/come2us/opsctl/pkg/replay"
	"github.com/come2us/opsctl/pkg/sim/promsim"
)

// The sandbox's opsctl agent: the real agent with the built-in redrive policy, alone (there is
// one sandbox), on the sandbox's Kafka. The fault windows' lock timeouts and lost connections
// are redriven a minute after they were dead-lettered (the policy's minAge), as runs of the
// actor opsctl-agent@sandbox that `dlt history` and the TUI's DLT screens show; its metrics
// are scraped by the simulated Prometheus as the agent's ServiceMonitor would.

// Agent pacing in the sandbox: passes and surveys come often, so a redrive shows soon after
// its record is old enough.
const (
	agentPassInterval   = 5 * time.Second
	agentSurveyInterval = 10 * time.Second
)

// startAgent starts the agent and its endpoints, stopped by Close before Kafka. They outlive
// ctx (Start's): they keep its values, not its cancellation.
func (s *Sandbox) startAgent(ctx context.Context) error {
	brokers := s.Brokers
	newClient := func(extra ...kgo.Opt) (*kgo.Client, error) {
		return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID("opsctl-agent-sandbox")}, extra...)...)
	}
	clock := s.cfg.AgentClock
	if clock == nil {
		clock = time.Now
	}
	id := agent.NewIdentity(ContextName)
	engine, err := replay.New(replay.Config{NewClient: newClient, Actor: id.Actor, Now: clock})
	if err != nil {
		return fmt.Errorf("sandbox agent: %w", err)
	}
	m := metrics.NewAgent()
	var a *agent.Agent
	loops := redrive.Loops(redrive.AgentConfig{
		Engine: engine, Policy: redrive.Static{P: redrive.Default()}, Clock: clock, Metrics: m, Identity: id.Actor,
		Report: func(component string, err error) { a.Report(component, err) },
		Logger: s.log.With("component", "agent"), PassInterval: agentPassInterval, SurveyInterval: agentSurveyInterval,
	})
	if a, err = agent.New(agent.Config{Identity: id, Metrics: m, Loops: loops, Logger: s.log.With("component", "agent")}); err != nil {
		engine.Close()
		return fmt.Errorf("sandbox agent: %w", err)
	}
	// A free port whatever PortBase says: the fixed ports are the ones other tools point at.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		engine.Close()
		return fmt.Errorf("sandbox agent: %w", err)
	}
	s.Agent, s.AgentURL = a, "http://"+ln.Addr().String()
	if err := s.Prometheus.AddTarget(promsim.Target{Job: "opsctl-agent", Instance: ln.Addr().String(), Gatherer: m.Registry,
		Labels: map[string]string{"namespace": gitops.Namespace("prod"), "pod": "opsctl-agent-sandbox"}}); err != nil {
		ln.Close()
		engine.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{}, 2)
	go func() {
		if err := a.Serve(ctx, ln); err != nil {
			s.log.Error("sandbox agent endpoints", "err", err)
		}
		done <- struct{}{}
	}()
	go func() {
		if err := a.Run(ctx); err != nil {
			s.log.Error("sandbox agent", "err", err)
		}
		done <- struct{}{}
	}()
	s.onClose(func() error {
		cancel()
		<-done
		<-done
		engine.Close()
		return nil
	})
	return nil
}
