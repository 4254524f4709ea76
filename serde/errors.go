package serde

import "errors"

// Errors returned by the encoder and decoder. Callers test them with
// errors.Is; the returned error may wrap one of these with context.
var (
	// ErrBadCross reports a checked cross integer whose prefix check bits do
	// not match its length, or whose length exceeds 8 bytes.
	ErrBadCross = errors.New("serde: bad cross integer check")
	// ErrIntOverflow reports a plain integer whose length byte exceeds the
	// width of the field it is decoded into.
	ErrIntOverflow = errors.New("serde: integer does not fit its field")
	// ErrLimit reports a string, container or stream larger than the
	// configured [Limits].
	ErrLimit = errors.New("serde: size limit exceeded")
	// ErrUnknownType reports a polymorphic field whose type id is not in the
	// [Registry], or a value whose type was never registered.
	ErrUnknownType = errors.New("serde: unknown type id")
	// ErrBadValue reports a byte that is not valid for its field, such as a
	// bool that is neither 0 nor 1.
	ErrBadValue = errors.New("serde: invalid value")
	// ErrNoProgress reports a stream source that returned no data and no
	// error. (Encode with an empty buffer is not an error: it returns
	// (0, false, nil), or (0, true, nil) when only byte-less work is left.)
	ErrNoProgress = errors.New("serde: no progress")
	// ErrNotReady, returned by a [StreamSource]'s Read together with no
	// bytes, says that the source has no bytes ready yet but will have:
	// Encode stops there without an error and [Encoder.Waiting] reports the
	// source; the next Encode reads it again. It is not an error of the
	// encode. (ipc's AsyncSource uses it to pause one message while the
	// others on its connection keep flowing.)
	ErrNotReady = errors.New("serde: stream source not ready")
)
