package srtpout

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/srtp/v3"
)

// exporterLabel is the RFC 5764 label for DTLS-SRTP keying material.
const exporterLabel = "EXTRACTOR-dtls_srtp"

// Keys are the SRTP master keys of one DTLS association, from the DTLS server's side.
type Keys struct {
	Profile srtp.ProtectionProfile
	// Local is what the DTLS server encrypts with, Remote what the client encrypts with.
	LocalKey, LocalSalt   []byte
	RemoteKey, RemoteSalt []byte
}

// KeyCapture derives the SRTP keys of one PeerConnection in which this node is the DTLS
// server. Install ServerHelloHook and the capture itself as the key log writer in that
// PeerConnection's SettingEngine (SetDTLSServerHelloMessageHook, SetDTLSKeyLogWriter); OnKeys
// then runs once the handshake has produced the master secret.
type KeyCapture struct {
	mu           sync.Mutex
	serverRandom []byte
	suite        dtls.CipherSuiteID
	profile      srtp.ProtectionProfile
	keys         *Keys
	err          error
	onKeys       func(Keys)
}

// NewKeyCapture returns a capture that calls onKeys (if not nil) with the derived keys.
func NewKeyCapture(onKeys func(Keys)) *KeyCapture {
	return &KeyCapture{onKeys: onKeys}
}

// ServerHelloHook records the server random, cipher suite and SRTP profile of the server
// hello this node sends, and returns the message unchanged.
func (k *KeyCapture) ServerHelloHook(m handshake.MessageServerHello) handshake.Message {
	random := m.Random.MarshalFixed()
	k.mu.Lock()
	k.serverRandom = random[:]
	if m.CipherSuiteID != nil {
		k.suite = dtls.CipherSuiteID(*m.CipherSuiteID)
	}
	for _, e := range m.Extensions {
		if u, ok := e.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) == 1 {
			k.profile = srtp.ProtectionProfile(u.ProtectionProfiles[0])
		}
	}
	k.mu.Unlock()
	return &m
}

// Write receives pion's key log, one NSS key log line per handshake:
// "CLIENT_RANDOM <client random hex> <master secret hex>". It never fails: a line it cannot
// use leaves the capture without keys (the caller then keeps pion's write path).
func (k *KeyCapture) Write(p []byte) (int, error) {
	keys, err := k.derive(p)
	k.mu.Lock()
	if err != nil {
		k.err = err
	} else {
		k.keys, k.err = &keys, nil
	}
	onKeys := k.onKeys
	k.mu.Unlock()
	if err == nil && onKeys != nil {
		onKeys(keys)
	}
	return len(p), nil
}

// Keys returns the derived keys, or the reason there are none.
func (k *KeyCapture) Keys() (Keys, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys != nil {
		return *k.keys, nil
	}
	if k.err != nil {
		return Keys{}, k.err
	}
	return Keys{}, errors.New("srtpout: no DTLS handshake seen")
}

func (k *KeyCapture) derive(line []byte) (Keys, error) {
	fields := bytes.Fields(line)
	if len(fields) != 3 || string(fields[0]) != "CLIENT_RANDOM" {
		return Keys{}, fmt.Errorf("srtpout: unexpected key log line (%d fields)", len(fields))
	}
	clientRandom, err1 := hex.DecodeString(string(fields[1]))
	master, err2 := hex.DecodeString(string(fields[2]))
	if err := errors.Join(err1, err2); err != nil {
		return Keys{}, fmt.Errorf("srtpout: key log line: %w", err)
	}
	k.mu.Lock()
	serverRandom, suite, profile := k.serverRandom, k.suite, k.profile
	k.mu.Unlock()
	if serverRandom == nil {
		return Keys{}, errors.New("srtpout: not the DTLS server (no server hello seen)")
	}
	return DeriveKeys(master, clientRandom, serverRandom, suite, profile)
}

// prfHash is the PRF hash of a TLS 1.2 cipher suite: SHA-384 for the *_SHA384 suites,
// SHA-256 for every other suite pion offers.
func prfHash(suite dtls.CipherSuiteID) (prf.HashFunc, error) {
	switch suite {
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		return sha512.New384, nil
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, dtls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM, dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8:
		return sha256.New, nil
	}
	return nil, fmt.Errorf("srtpout: cipher suite %#04x not supported", uint16(suite))
}

// DeriveKeys computes the DTLS-SRTP master keys (RFC 5764 section 4.2) from a TLS 1.2 master
// secret and the hello randoms, as the DTLS server sees them.
func DeriveKeys(master, clientRandom, serverRandom []byte, suite dtls.CipherSuiteID, profile srtp.ProtectionProfile) (Keys, error) {
	hash, err := prfHash(suite)
	if err != nil {
		return Keys{}, err
	}
	keyLen, err1 := profile.KeyLen()
	saltLen, err2 := profile.SaltLen()
	if err := errors.Join(err1, err2); err != nil || keyLen == 0 {
		return Keys{}, fmt.Errorf("srtpout: SRTP profile %#04x not supported", uint16(profile))
	}
	seed := make([]byte, 0, len(exporterLabel)+len(clientRandom)+len(serverRandom))
	seed = append(append(append(seed, exporterLabel...), clientRandom...), serverRandom...)
	m, err := prf.PHash(master, seed, 2*(keyLen+saltLen), hash)
	if err != nil {
		return Keys{}, fmt.Errorf("srtpout: exporter: %w", err)
	}
	// client key | server key | client salt | server salt
	return Keys{
		Profile:    profile,
		RemoteKey:  m[:keyLen],
		LocalKey:   m[keyLen : 2*keyLen],
		RemoteSalt: m[2*keyLen : 2*keyLen+saltLen],
		LocalSalt:  m[2*keyLen+saltLen:],
	}, nil
}
