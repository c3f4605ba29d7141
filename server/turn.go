package server

import (
	"crypto/tls"
	"fmt"

	"github.com/sanke-edu/sanke/room"
	"github.com/sanke-edu/sanke/turnserver"
)

// startTURN starts the embedded TURN relay when turn.enabled is set and hands its
// credentials to the rooms' join responses.
func (s *Server) startTURN(rc *room.Config, bindIP string) error {
	c := s.cfg.TURN
	if !c.Enabled {
		return nil
	}
	tc := turnserver.Config{
		UDPPort:      c.UDPPort,
		TCPPort:      c.TCPPort,
		TLSPort:      c.TLSPort,
		BindIP:       bindIP,
		RelayIP:      s.cfg.RTC.NodeIP,
		RelayPortMin: c.RelayPortRangeStart,
		RelayPortMax: c.RelayPortRangeEnd,
		Domain:       c.Domain,
	}
	if c.TLSPort != 0 {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return fmt.Errorf("turn: certificate: %w", err)
		}
		tc.Certificate = &cert
	}
	relay, err := turnserver.Start(tc, s.logger)
	if err != nil {
		return err
	}
	s.turn = relay
	rc.TURN = relay.ICEServer
	return nil
}

// closeSockets closes the media sockets and the TURN relay.
func (s *Server) closeSockets() error {
	err := s.media.Close()
	if s.turn != nil {
		if terr := s.turn.Close(); err == nil {
			err = terr
		}
	}
	return err
}
