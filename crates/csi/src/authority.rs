//! The kubelet's plugin registration client dials the registration socket by its bare path, so grpc-go
//! sends that path as the HTTP/2 `:authority` (the kubelet's CSI client sets "localhost"; its registration
//! client does not, as of v1.35). hyper's h2 refuses such a request outright (an authority has no `/`)
//! with PROTOCOL_ERROR, so the kubelet could never read who we are. Each connection to the registration
//! socket therefore passes through [`relay`]: the client's header blocks are decoded and encoded again
//! with `:authority: localhost`; every other frame, and the whole server-to-client direction, pass
//! unchanged.

use loona_hpack::{Decoder, Encoder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// SETTINGS_MAX_FRAME_SIZE's initial value: what a server accepts before it says otherwise.
const MAX_FRAME: usize = 16_384;

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// Re-encodes one header block with `:authority` set to localhost. One decoder per connection follows
/// the client's encoder, one encoder the server's decoder: each side's dynamic table stays consistent.
pub(crate) fn rewrite_block(
    decoder: &mut Decoder<'static>,
    encoder: &mut Encoder<'static>,
    block: &[u8],
) -> std::io::Result<Vec<u8>> {
    let headers = decoder
        .decode(block)
        .map_err(|e| invalid(&format!("an HPACK block the relay cannot decode: {e:?}")))?;
    let fixed: Vec<(Vec<u8>, Vec<u8>)> = headers
        .into_iter()
        .map(|(name, value)| {
            if name == b":authority" {
                (name, b"localhost".to_vec())
            } else {
                (name, value)
            }
        })
        .collect();
    Ok(encoder.encode(fixed.iter().map(|(n, v)| (n.as_slice(), v.as_slice()))))
}

/// The header block fragment of a HEADERS frame's payload, without padding and priority fields.
fn fragment(flags: u8, payload: &[u8]) -> std::io::Result<&[u8]> {
    let mut start = 0;
    let mut end = payload.len();
    if flags & PADDED != 0 {
        let pad = *payload
            .first()
            .ok_or_else(|| invalid("a padded frame without its length"))?
            as usize;
        start = 1;
        end = end
            .checked_sub(pad)
            .ok_or_else(|| invalid("padding longer than the frame"))?;
    }
    if flags & PRIORITY != 0 {
        start += 5;
    }
    payload
        .get(start..end)
        .ok_or_else(|| invalid("a HEADERS frame shorter than its fields"))
}

async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<([u8; 9], Vec<u8>)>> {
    let mut head = [0u8; 9];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Ok(Some((head, payload)))
}

fn frame_head(len: usize, kind: u8, flags: u8, stream: [u8; 4]) -> [u8; 9] {
    let l = (len as u32).to_be_bytes();
    [
        l[1], l[2], l[3], kind, flags, stream[0], stream[1], stream[2], stream[3],
    ]
}

/// Copies the client's side of an HTTP/2 connection to the server, header blocks rewritten.
pub(crate) async fn client_to_server<R, W>(mut from: R, mut to: W) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut preface = [0u8; 24];
    from.read_exact(&mut preface).await?;
    if &preface != PREFACE {
        return Err(invalid("not an HTTP/2 connection"));
    }
    to.write_all(&preface).await?;
    let mut decoder = Decoder::new();
    let mut encoder = Encoder::new();
    while let Some((head, payload)) = read_frame(&mut from).await? {
        let (kind, flags) = (head[3], head[4]);
        if kind != HEADERS {
            to.write_all(&head).await?;
            to.write_all(&payload).await?;
            to.flush().await?;
            continue;
        }
        let stream = [head[5], head[6], head[7], head[8]];
        let mut block = fragment(flags, &payload)?.to_vec();
        let mut ended = flags & END_HEADERS != 0;
        while !ended {
            let (h, p) = read_frame(&mut from)
                .await?
                .ok_or_else(|| invalid("the connection ended inside a header block"))?;
            if h[3] != CONTINUATION {
                return Err(invalid("a header block interrupted by another frame"));
            }
            block.extend_from_slice(&p);
            ended = h[4] & END_HEADERS != 0;
        }
        let block = rewrite_block(&mut decoder, &mut encoder, &block)?;
        let mut chunks = block.chunks(MAX_FRAME).peekable();
        let mut kind = HEADERS;
        let mut first_flags = flags & END_STREAM;
        // An empty block still needs its one HEADERS frame.
        if chunks.peek().is_none() {
            to.write_all(&frame_head(0, HEADERS, first_flags | END_HEADERS, stream))
                .await?;
        }
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            let f = first_flags | if last { END_HEADERS } else { 0 };
            to.write_all(&frame_head(chunk.len(), kind, f, stream))
                .await?;
            to.write_all(chunk).await?;
            kind = CONTINUATION;
            first_flags = 0;
        }
        to.flush().await?;
    }
    to.shutdown().await
}

/// Relays one client connection to `server` (the gRPC server's end of an in-memory pipe) until either
/// side closes.
pub async fn relay<C, S>(client: C, server: S)
where
    C: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (client_read, mut client_write) = tokio::io::split(client);
    let (mut server_read, server_write) = tokio::io::split(server);
    let up = client_to_server(client_read, server_write);
    let down = tokio::io::copy(&mut server_read, &mut client_write);
    tokio::select! {
        r = up => if let Err(e) = r { tracing::debug!(error = %e, "registration connection ended") },
        r = down => if let Err(e) = r { tracing::debug!(error = %e, "registration connection ended") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_of(enc: &mut Encoder<'static>, headers: &[(&str, &str)]) -> Vec<u8> {
        enc.encode(headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    #[tokio::test]
    async fn a_socket_path_authority_becomes_localhost_and_the_rest_passes() {
        let mut client_enc = Encoder::new();
        let request = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/pluginregistration.Registration/GetInfo"),
            (":authority", "/var/lib/kubelet/plugins_registry/x-reg.sock"),
            ("content-type", "application/grpc"),
        ];
        let block = block_of(&mut client_enc, &request);
        // A padded HEADERS frame split over a CONTINUATION, then a DATA frame, then a second request
        // whose headers refer to the first one's dynamic table entries.
        let mut wire = PREFACE.to_vec();
        let (a, b) = block.split_at(block.len() / 2);
        let mut payload = vec![3u8];
        payload.extend_from_slice(a);
        payload.extend_from_slice(&[0, 0, 0]);
        wire.extend_from_slice(&frame_head(payload.len(), HEADERS, PADDED, [0, 0, 0, 1]));
        wire.extend_from_slice(&payload);
        wire.extend_from_slice(&frame_head(
            b.len(),
            CONTINUATION,
            END_HEADERS,
            [0, 0, 0, 1],
        ));
        wire.extend_from_slice(b);
        wire.extend_from_slice(&frame_head(2, 0x0, END_STREAM, [0, 0, 0, 1]));
        wire.extend_from_slice(b"hi");
        let again = block_of(&mut client_enc, &request);
        wire.extend_from_slice(&frame_head(
            again.len(),
            HEADERS,
            END_HEADERS | END_STREAM,
            [0, 0, 0, 3],
        ));
        wire.extend_from_slice(&again);

        let mut out = Vec::new();
        client_to_server(&wire[..], &mut out).await.unwrap();

        assert_eq!(&out[..24], PREFACE);
        let mut rest = &out[24..];
        let mut server_dec = Decoder::new();
        let mut seen = Vec::new();
        while !rest.is_empty() {
            let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
            let (kind, flags, payload) = (rest[3], rest[4], &rest[9..9 + len]);
            if kind == HEADERS {
                assert_ne!(flags & END_HEADERS, 0);
                let headers = server_dec.decode(payload).unwrap();
                let authority = headers.iter().find(|(n, _)| n == b":authority").unwrap();
                assert_eq!(authority.1, b"localhost");
                assert!(headers
                    .iter()
                    .any(|(n, v)| n == b":path" && v.ends_with(b"GetInfo")));
                seen.push(("headers", flags & END_STREAM));
            } else {
                assert_eq!((kind, payload), (0x0, &b"hi"[..]));
                seen.push(("data", flags & END_STREAM));
            }
            rest = &rest[9 + len..];
        }
        assert_eq!(seen, [("headers", 0), ("data", 1), ("headers", 1)]);
    }

    #[tokio::test]
    async fn what_is_not_http2_is_refused() {
        let mut out = Vec::new();
        let err = client_to_server(&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..], &mut out)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(out.is_empty());
    }
}
