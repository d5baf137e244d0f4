// Package proto holds the wire formats: the chunk-exchange and rules-exchange
// stream protocols and the git-annex external special remote line protocol.
// Every length read off the wire is bounded. See docs/PROTOCOL.md.
//
// # Stream protocols
//
// A message is a frame: a minimal unsigned varint length, then a body made of
// one type byte and a deterministic CBOR map with integer keys
// (docs/PROTOCOL.md "Framing", "Message encoding"). FrameReader and
// FrameWriter handle frames; EncodeMsg and DecodeMsg handle bodies; a Codec
// does both over one stream:
//
//	c := proto.NewCodec(stream) // stream deadlines are the caller's
//	c.Send(&proto.BlockRequest{ID: 1, CID: id})
//	c.Send(&proto.BlockRequest{ID: 2, CID: other})
//	c.Flush()
//	m, err := c.Recv() // *proto.BlockResponse or *proto.ErrorResponse, by ID
//
// Every message type is a struct (HaveRequest, BlockResponse, Hello, ...)
// whose pointer implements Msg. Received messages are validated; messages
// are validated again before they are sent. Any error other than io.EOF
// from Recv means the stream MUST be reset.
//
// The package checks form and bounds, never content: the caller verifies
// that chunk and manifest bytes hash to their CID.
package proto
