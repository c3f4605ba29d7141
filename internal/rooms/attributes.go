package rooms

import "strings"

// ReservedAttributePrefix starts the participant attribute keys that belong to the server
// (sanke.role, sanke.account, sanke.called_on, ...): the classroom layer reads who a
// participant is and what it may do from them. Only the server itself sets, changes or
// deletes them (through the room layer directly), and the join token, which the server or
// the API key holder signed, may carry them. Every client path refuses them: update_metadata
// signal requests, attributes asked for at join, and the Room API's UpdateParticipant,
// whatever the caller's grants. The prefix is matched without regard to case, so that no
// look-alike key ("Sanke.Account") can pass for one of them either.
const ReservedAttributePrefix = "sanke."

// ReservedAttribute returns a key of attrs that starts with [ReservedAttributePrefix], and
// false when there is none.
func ReservedAttribute(attrs map[string]string) (string, bool) {
	for k := range attrs {
		if len(k) >= len(ReservedAttributePrefix) && strings.EqualFold(k[:len(ReservedAttributePrefix)], ReservedAttributePrefix) {
			return k, true
		}
	}
	return "", false
}
