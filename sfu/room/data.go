package room

import (
	"fmt"

	"github.com/livekit/protocol/livekit"
	"github.com/pion/webrtc/v4"
	"google.golang.org/protobuf/proto"

	"github.com/sanke-edu/sanke/internal/rooms"
)

// Data channel labels used by LiveKit clients (publisher side, created by the client) and by
// the server (subscriber side, created by us).
const (
	reliableLabel = "_reliable"
	lossyLabel    = "_lossy"
	// dataTrackLabel is the channel livekit-client opens for data tracks (unsupported).
	dataTrackLabel = "_data_track"
	// maxDataPacket bounds a relayed data packet; larger ones are dropped with a log line.
	maxDataPacket = 64 << 10
	// maxDataChannels bounds the data channels a client may open; more are closed.
	maxDataChannels = 4
	// maxLossyBuffered and maxReliableBuffered bound the bytes queued on one client's lossy
	// and reliable data channels: a packet is dropped (and counted) rather than queued
	// beyond, so that a client that does not read its data (gone, or on a link too slow
	// for it) cannot make the server keep what others send it. Lossy data is worthless
	// once late; reliable data gets room for bursts (a page of slides, a file in chunks).
	maxLossyBuffered    = 128 << 10
	maxReliableBuffered = 4 << 20
	// dropLogEvery: one log line per this many data packets dropped for a client.
	dropLogEvery = 100
)

// checkData bounds a data packet the Room API sends: its payload, topic and destinations.
func checkData(req *livekit.SendDataRequest) error {
	if len(req.Data) > maxDataPacket {
		return fmt.Errorf("data is %d bytes, over the limit of %d: %w", len(req.Data), maxDataPacket, rooms.ErrLimitExceeded)
	}
	if err := checkLength("data topic", req.GetTopic(), maxIDLength); err != nil {
		return err
	}
	return checkList("data destinations", len(req.DestinationIdentities)+len(req.DestinationSids)) //nolint:staticcheck // LiveKit Room API: data addressed by sid
}

// onDataChannel accepts the client's data channels on the publisher connection.
// Channels with other labels, and channels beyond maxDataChannels, are closed.
func (p *Participant) onDataChannel(dc *webrtc.DataChannel) {
	p.mu.Lock()
	p.dataChannels++
	tooMany := p.dataChannels > maxDataChannels
	p.mu.Unlock()
	var kind livekit.DataPacket_Kind
	switch label := dc.Label(); {
	case tooMany:
		p.logger.Info("too many data channels, closing one", "label", label)
		_ = dc.Close()
		return
	case label == reliableLabel:
		kind = livekit.DataPacket_RELIABLE
	case label == lossyLabel:
		kind = livekit.DataPacket_LOSSY
	case label == dataTrackLabel:
		return // data tracks are not supported; keep the channel open so the client stays happy
	default:
		p.logger.Debug("closing data channel", "label", label)
		_ = dc.Close()
		return
	}
	if p.single {
		// In single PeerConnection mode the client's channels carry data both ways.
		p.mu.Lock()
		if kind == livekit.DataPacket_RELIABLE {
			p.reliableOut = dc
		} else {
			p.lossyOut = dc
		}
		p.mu.Unlock()
	}
	dc.OnMessage(func(msg webrtc.DataChannelMessage) { p.handleData(kind, msg.Data) })
}

// handleData validates a data packet from the client, stamps its sender and relays it.
func (p *Participant) handleData(kind livekit.DataPacket_Kind, data []byte) {
	if len(data) > maxDataPacket {
		p.logger.Warn("data packet too large, dropped", "bytes", len(data))
		return
	}
	if !p.canPublishData() {
		p.logger.Debug("data packet without canPublishData, dropped")
		return
	}
	pkt := &livekit.DataPacket{}
	if err := proto.Unmarshal(data, pkt); err != nil {
		p.logger.Warn("malformed data packet, dropped", "err", err)
		return
	}
	if err := checkList("data destinations", len(pkt.DestinationIdentities)+len(pkt.GetUser().GetDestinationIdentities())); err != nil { //nolint:staticcheck // LiveKit protocol: older clients address here
		p.logger.Warn("data packet dropped", "err", err)
		return
	}
	if kind == livekit.DataPacket_RELIABLE && pkt.Sequence > 0 {
		p.mu.Lock()
		dup := pkt.Sequence <= p.lastDataSeq
		if !dup {
			p.lastDataSeq = pkt.Sequence
		}
		p.mu.Unlock()
		if dup {
			return // replayed after a resume; already relayed
		}
	}
	pkt.Kind = kind //nolint:staticcheck // LiveKit protocol: clients send and read kind
	p.room.relayData(p, kind, pkt)
}

// stampSender sets the sender fields a receiver trusts; clients cannot spoof them.
// Sequence numbers and everything else stay as the client sent them.
func stampSender(pkt *livekit.DataPacket, sid, identity string) []string {
	pkt.ParticipantIdentity = identity
	pkt.ParticipantSid = sid
	dest := pkt.DestinationIdentities
	if u := pkt.GetUser(); u != nil {
		u.ParticipantSid = sid           //nolint:staticcheck // LiveKit protocol: older clients read it
		u.ParticipantIdentity = identity //nolint:staticcheck // LiveKit protocol: older clients read it
		if len(dest) == 0 {
			dest = u.DestinationIdentities //nolint:staticcheck // LiveKit protocol: older clients address here
		}
	}
	return dest
}

// dataBuffered returns the bytes queued on the data channels to the client.
func (p *Participant) dataBuffered() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n uint64
	for _, dc := range []*webrtc.DataChannel{p.reliableOut, p.lossyOut} {
		if dc != nil {
			n += dc.BufferedAmount()
		}
	}
	return n
}

// sendData delivers an encoded data packet on the subscriber-side channel of that kind,
// unless that channel already holds its bound of bytes the client has not taken: the packet
// is then dropped and counted.
func (p *Participant) sendData(kind livekit.DataPacket_Kind, b []byte) {
	p.mu.Lock()
	dc, limit := p.reliableOut, uint64(maxReliableBuffered)
	if kind == livekit.DataPacket_LOSSY {
		dc, limit = p.lossyOut, maxLossyBuffered
	}
	p.mu.Unlock()
	if dc == nil || dc.ReadyState() != webrtc.DataChannelStateOpen {
		return
	}
	if queued := dc.BufferedAmount(); queued >= limit {
		p.room.manager.dataDropped.Add(1)
		if n := p.dataDropped.Add(1); n%dropLogEvery == 1 {
			p.logger.Info("data dropped: the participant does not read it fast enough",
				"kind", kind.String(), "queued_bytes", queued, "dropped", n)
		}
		return
	}
	if err := dc.Send(b); err != nil {
		p.logger.Debug("data send failed", "err", err)
	}
}

// relayData sends pkt from sender (nil: the server, e.g. the Room API) to its destinations:
// everyone else in the room when the list is empty.
func (r *Room) relayData(sender *Participant, kind livekit.DataPacket_Kind, pkt *livekit.DataPacket) {
	var dest []string
	if sender != nil {
		dest = stampSender(pkt, sender.sid, sender.identity)
	} else {
		dest = pkt.DestinationIdentities
		if u := pkt.GetUser(); u != nil && len(dest) == 0 {
			dest = u.DestinationIdentities //nolint:staticcheck // LiveKit protocol: older clients address here
		}
	}
	b, err := proto.Marshal(pkt)
	if err != nil {
		r.logger.Warn("marshal data packet", "err", err)
		return
	}
	want := make(map[string]bool, len(dest))
	for _, d := range dest {
		want[d] = true
	}
	for _, p := range r.participantList() {
		if p == sender || (len(want) > 0 && !want[p.identity]) {
			continue
		}
		p.sendData(kind, b)
	}
}
