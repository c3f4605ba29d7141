// Package room holds rooms and their participants: lifecycle, PeerConnections, track
// publication and subscription, permissions and data relay. Its Manager is the room layer of
// the contract in internal/rooms: it implements rooms.Joiner (and rooms.JoinValidator) for
// signaling and rooms.Admin for the Room API, and returns the rooms package's errors.
package room
