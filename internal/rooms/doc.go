// Package rooms is the contract between the front ends that carry clients to the rooms
// (signaling's websocket, the Room API, and later the cluster's signal relay) and the room
// layer that runs them (sfu/room): the verified join a front end hands over ([JoinRequest]),
// the two halves of one signaling connection ([Sink], [Session]), what the room layer offers
// ([Joiner], [JoinValidator], [Admin]), and the errors both sides recognise with errors.Is.
//
// It is a leaf: it imports only protocol libraries, never another package of this module, so
// that every side can import it and none imports another side.
package rooms
