/*
 * libipcnet.so: ZeroMQ bridge kernels, for hosts started by hand
 * (`ipcrun --host NAME topo.ini`, SCALE_OUT.md 5.10). ipcrun puts one of them
 * in place of the far end of every bridged edge of its host:
 *
 *   zmq_tx(endpoint, edge, window, curve_dir, me, peer)   input port "in"
 *   zmq_rx(endpoint, edge, window, curve_dir, me, peer)   output port "out"
 *
 * zmq_rx binds the endpoint on the consumer's host, zmq_tx connects to it;
 * one ZMQ_PAIR socket per edge carries the frames of frame.h: DATA (one
 * record each, numbered), EOF/ABORT on the last, CREDIT and CLOSED back. At
 * most `window` frames are uncredited, so a slow consumer blocks the
 * producer's host. ZeroMQ reconnects silently and may lose what was queued
 * (measured: 704 and 15 616 messages), so here any disconnect, sequence gap
 * or second peer ends the edge: downstream sees IPC_TX_ABORTED (zmq_rx
 * returns 1), upstream -EPIPE (zmq_tx returns and its input closes); never
 * a silent resume. ZMTP heartbeats (1 s, 5 s timeout) turn a partition into
 * a disconnect.
 *
 * CURVE: with a curve_dir, each host has DIR/NAME.key (secret) and
 * DIR/NAME.pub (public), Z85 text as `ipcnet-keygen` writes them; zmq_rx is
 * the CURVE server, zmq_tx the client that must know the server's public
 * key, and zmq_rx's ZAP handler admits only the client whose public key is
 * DIR/PEER.pub: both hosts are authenticated, the link encrypted. Without
 * it, plain TCP: for loopback or trusted links only.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include <ipc/kernel.h>

#include "../../runtime/ipcrun/frame.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_RECORD (1ull << 30)

EXPORT int zmq_tx(struct ipc_kernel *k, const char *endpoint, uint64_t edge,
                  uint64_t window, const char *curve, const char *me,
                  const char *peer);
EXPORT int zmq_rx(struct ipc_kernel *k, const char *endpoint, uint64_t edge,
                  uint64_t window, const char *curve, const char *me,
                  const char *peer);

IPC_KERNEL(zmq_tx, "in", "", "str, u64, u64, str, str, str",
           "sends its input to the zmq_rx bound at endpoint");
IPC_KERNEL(zmq_rx, "", "out", "str, u64, u64, str, str, str",
           "binds endpoint and passes on what one zmq_tx sends");

struct link {
	const char *name, *me, *peer;
	uint32_t edge;
	void *ctx, *sock, *mon;
	int accepted;
	bool connected, lost;
	void *zap;             /* the ZAP handler's socket (CURVE server) */
	pthread_t zap_thread;
	bool zap_started;
	uint8_t client_key[32]; /* the one client public key admitted */
};

static int read_key(const char *dir, const char *name, const char *ext,
                    char out[41])
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "ipcnet: cannot read %s: %s\n", path, strerror(errno));
		return -1;
	}
	size_t n = fread(out, 1, 40, f);
	fclose(f);
	out[n == 40 ? 40 : 0] = 0;
	if (n != 40) {
		fprintf(stderr, "ipcnet: %s is not a 40-character Z85 key\n", path);
		return -1;
	}
	return 0;
}

/* ZAP (RFC 27): admit the CURVE client whose key is the peer host's, and
 * nobody else. Ends when the context is terminated. */
static void *zap_main(void *arg)
{
	struct link *l = arg;
	for (;;) {
		zmq_msg_t part[7];
		int n = 0, more = 1;
		while (more) {
			zmq_msg_t m;
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, l->zap, 0) < 0) {
				zmq_msg_close(&m);
				for (int i = 0; i < n; i++)
					zmq_msg_close(&part[i]);
				zmq_close(l->zap);
				return NULL; /* ETERM */
			}
			more = zmq_msg_more(&m);
			if (n < 7)
				part[n++] = m;
			else
				zmq_msg_close(&m);
		}
		bool ok = n == 7 && zmq_msg_size(&part[5]) == 5 &&
		          !memcmp(zmq_msg_data(&part[5]), "CURVE", 5) &&
		          zmq_msg_size(&part[6]) == 32 &&
		          !memcmp(zmq_msg_data(&part[6]), l->client_key, 32);
		if (!ok)
			fprintf(stderr, "%s: refused a client that is not host '%s' "
			        "(its CURVE key is not %s.pub) on edge %u\n", l->name,
			        l->peer, l->peer, l->edge);
		zmq_send(l->zap, "1.0", 3, ZMQ_SNDMORE);
		if (n >= 2)
			zmq_send(l->zap, zmq_msg_data(&part[1]), zmq_msg_size(&part[1]),
			         ZMQ_SNDMORE);
		else
			zmq_send(l->zap, "", 0, ZMQ_SNDMORE);
		zmq_send(l->zap, ok ? "200" : "400", 3, ZMQ_SNDMORE);
		zmq_send(l->zap, ok ? "OK" : "unknown key", ok ? 2 : 11, ZMQ_SNDMORE);
		zmq_send(l->zap, "", 0, ZMQ_SNDMORE);
		zmq_send(l->zap, "", 0, 0);
		for (int i = 0; i < n; i++)
			zmq_msg_close(&part[i]);
	}
}

static int open_link(struct link *l, const char *endpoint, const char *curve,
                     bool server)
{
	l->ctx = zmq_ctx_new();
	l->sock = l->ctx ? zmq_socket(l->ctx, ZMQ_PAIR) : NULL;
	if (!l->sock)
		return -1;
	int linger = 2000, ivl = 1000, tmo = 5000, hwm = 64;
	zmq_setsockopt(l->sock, ZMQ_LINGER, &linger, sizeof linger);
	zmq_setsockopt(l->sock, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
	zmq_setsockopt(l->sock, ZMQ_HEARTBEAT_TIMEOUT, &tmo, sizeof tmo);
	zmq_setsockopt(l->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
	zmq_setsockopt(l->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
	if (curve && *curve) {
		char sec[41], pub[41], srv[41];
		if (read_key(curve, l->me, "key", sec) || read_key(curve, l->me, "pub", pub))
			return -1;
		zmq_setsockopt(l->sock, ZMQ_CURVE_SECRETKEY, sec, 40);
		zmq_setsockopt(l->sock, ZMQ_CURVE_PUBLICKEY, pub, 40);
		if (server) {
			int one = 1;
			char client[41];
			if (read_key(curve, l->peer, "pub", client) ||
			    !zmq_z85_decode(l->client_key, client))
				return -1;
			l->zap = zmq_socket(l->ctx, ZMQ_REP);
			if (!l->zap || zmq_bind(l->zap, "inproc://zeromq.zap.01"))
				return -1;
			if (pthread_create(&l->zap_thread, NULL, zap_main, l)) {
				zmq_close(l->zap);
				return -1;
			}
			l->zap_started = true;
			zmq_setsockopt(l->sock, ZMQ_CURVE_SERVER, &one, sizeof one);
			zmq_setsockopt(l->sock, ZMQ_ZAP_DOMAIN, "ipcnet", 6);
		} else {
			if (read_key(curve, l->peer, "pub", srv))
				return -1;
			zmq_setsockopt(l->sock, ZMQ_CURVE_SERVERKEY, srv, 40);
		}
	}
	char addr[64];
	snprintf(addr, sizeof addr, "inproc://ipcnet-mon-%u", l->edge);
	if (zmq_socket_monitor(l->sock, addr, ZMQ_EVENT_ALL))
		return -1;
	l->mon = zmq_socket(l->ctx, ZMQ_PAIR);
	if (!l->mon || zmq_connect(l->mon, addr))
		return -1;
	int rc = server ? zmq_bind(l->sock, endpoint) : zmq_connect(l->sock, endpoint);
	if (rc) {
		fprintf(stderr, "%s: cannot %s %s: %s\n", l->name,
		        server ? "bind" : "connect", endpoint, zmq_strerror(zmq_errno()));
		return -1;
	}
	return 0;
}

static void close_link(struct link *l)
{
	if (l->zap && !l->zap_started)
		zmq_close(l->zap);
	if (l->sock)
		zmq_socket_monitor(l->sock, NULL, 0);
	if (l->mon)
		zmq_close(l->mon);
	if (l->sock)
		zmq_close(l->sock);
	if (l->ctx)
		zmq_ctx_term(l->ctx); /* ends the ZAP handler, which closes its socket */
	if (l->zap_started)
		pthread_join(l->zap_thread, NULL);
}

/* Read the monitor's events; false when the edge must end (a disconnect
 * after a connection, or a second peer). */
static bool watch(struct link *l, bool server)
{
	for (;;) {
		uint8_t ev[6];
		char addr[256];
		if (zmq_recv(l->mon, ev, sizeof ev, ZMQ_DONTWAIT) < 0)
			return !l->lost;
		zmq_recv(l->mon, addr, sizeof addr, 0);
		uint16_t e = (uint16_t)(ev[0] | ev[1] << 8);
		if (e == ZMQ_EVENT_ACCEPTED && server && ++l->accepted > 1) {
			fprintf(stderr, "%s: a second peer connected to edge %u; the "
			        "edge is aborted (exactly one host may send on it)\n",
			        l->name, l->edge);
			l->lost = true;
		} else if (e == ZMQ_EVENT_HANDSHAKE_SUCCEEDED ||
		           (e == ZMQ_EVENT_CONNECTED && !server)) {
			l->connected = true;
		} else if (e == ZMQ_EVENT_ACCEPTED) {
			l->connected = true;
		} else if ((e == ZMQ_EVENT_DISCONNECTED ||
		            e == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ||
		            e == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) && !l->lost) {
			fprintf(stderr, "%s: host '%s' %s on edge %u; the edge is "
			        "aborted, never resumed\n", l->name, l->peer,
			        e == ZMQ_EVENT_DISCONNECTED ? "disconnected" :
			        "failed the CURVE handshake", l->edge);
			l->lost = true;
		}
	}
}

static int send_hdr(struct link *l, uint8_t type, uint32_t count)
{
	uint8_t b[IR_FRAME_HDR];
	struct ir_frame_hdr h = {.version = IR_FRAME_VERSION, .type = type,
	                         .edge = l->edge, .count = count};
	ir_frame_put_hdr(b, &h);
	return zmq_send(l->sock, b, sizeof b, 0) < 0 ? -1 : 0;
}

/* Wait up to ms for a control frame; 1 CREDIT (credits added), 2 CLOSED,
 * 0 nothing yet, -1 the edge is lost or a frame is bad. */
static int tx_control(struct link *l, uint32_t *credits, int ms)
{
	zmq_pollitem_t it[2] = {{l->sock, 0, ZMQ_POLLIN, 0}, {l->mon, 0, ZMQ_POLLIN, 0}};
	if (zmq_poll(it, 2, ms) < 0 && zmq_errno() != EINTR)
		return -1;
	if (!watch(l, false))
		return -1;
	uint8_t b[64];
	int n = zmq_recv(l->sock, b, sizeof b, ZMQ_DONTWAIT);
	if (n < 0)
		return 0;
	struct ir_frame_hdr h;
	const char *why = "not a credit";
	if ((size_t)n > sizeof b ||
	    ir_frame_parse(b, (size_t)n, l->edge + 1, MAX_RECORD, &h, &why) ||
	    h.edge != l->edge || (h.type != IR_FRAME_CREDIT && h.type != IR_FRAME_CLOSED)) {
		fprintf(stderr, "%s: bad frame from host '%s': %s\n", l->name, l->peer, why);
		return -1;
	}
	if (h.type == IR_FRAME_CLOSED)
		return 2;
	*credits += h.count;
	return 1;
}

int zmq_tx(struct ipc_kernel *k, const char *endpoint, uint64_t edge,
           uint64_t window, const char *curve, const char *me, const char *peer)
{
	struct link l = {.name = ipc_kernel_name(k), .me = me, .peer = peer,
	                 .edge = (uint32_t)edge};
	struct ipc_port *in = ipc_in(k, "in");
	int result = 1;
	if (open_link(&l, endpoint, curve, false))
		goto out;
	uint32_t credits = (uint32_t)(window ? window : 4);
	uint64_t seq = 0;
	uint8_t *buf = NULL;
	size_t cap = 0;
	for (;;) {
		int c;
		while ((c = tx_control(&l, &credits, credits ? 0 : 1000)) == 1 || !credits) {
			if (c < 0 || c == 2)
				break;
		}
		if (c == 2) {
			result = 0; /* the consumer left: our input closes, -EPIPE upstream */
			break;
		}
		if (c < 0)
			break;
		void *rec = NULL;
		size_t n = 0;
		int rc = ipc_recv(in, &rec, &n);
		uint16_t flags = rc == 0 ? 0 : rc == IPC_TX_EOF ? IR_FRAME_EOF : IR_FRAME_ABORT;
		size_t need = IR_FRAME_HDR + ir_frame_rec_size(n);
		if (need > cap) {
			free(buf);
			cap = need;
			buf = malloc(cap);
			if (!buf) {
				fprintf(stderr, "%s: out of memory\n", l.name);
				break;
			}
		}
		struct ir_frame_writer w;
		ir_frame_begin(&w, buf, cap);
		if (rc == 0)
			ir_frame_add(&w, rec, n);
		size_t len = ir_frame_end(&w, l.edge, seq, flags);
		if (rc == 0)
			ipc_release(in, rec);
		if (zmq_send(l.sock, buf, len, 0) < 0)
			break;
		seq += w.count;
		credits--;
		if (flags) {
			/* the last frame: wait for its credit, so nothing is lost in a
			 * queue when we close */
			uint32_t want = (uint32_t)(window ? window : 4);
			for (int i = 0; i < 30 && credits < want; i++)
				if ((c = tx_control(&l, &credits, 1000)) < 0 || c == 2)
					break;
			result = rc == IPC_TX_EOF ? 0 : 1;
			break;
		}
	}
	free(buf);
out:
	close_link(&l);
	return result;
}

int zmq_rx(struct ipc_kernel *k, const char *endpoint, uint64_t edge,
           uint64_t window, const char *curve, const char *me, const char *peer)
{
	struct link l = {.name = ipc_kernel_name(k), .me = me, .peer = peer,
	                 .edge = (uint32_t)edge};
	struct ipc_port *out = ipc_out(k, "out");
	int result = 1;
	bool closed = false;
	uint64_t seq = 0;
	uint32_t pending = 0, every = (uint32_t)(window > 1 ? window / 2 : 1);
	zmq_msg_t m;
	zmq_msg_init(&m);
	if (open_link(&l, endpoint, curve, true))
		goto out;
	for (;;) {
		zmq_pollitem_t it[2] = {{l.sock, 0, ZMQ_POLLIN, 0}, {l.mon, 0, ZMQ_POLLIN, 0}};
		if (zmq_poll(it, 2, 200) < 0 && zmq_errno() != EINTR)
			break;
		if (!watch(&l, true))
			break;
		if (zmq_msg_recv(&m, l.sock, ZMQ_DONTWAIT) < 0) {
			if (ipc_stopping(k) && !l.connected) {
				result = 0; /* stopped before the other host came */
				break;
			}
			continue;
		}
		const uint8_t *b = zmq_msg_data(&m);
		size_t n = zmq_msg_size(&m);
		struct ir_frame_hdr h;
		const char *why = "not DATA";
		if (ir_frame_parse(b, n, l.edge + 1, MAX_RECORD, &h, &why) ||
		    h.type != IR_FRAME_DATA || h.edge != l.edge || (h.flags & IR_FRAME_BIG)) {
			fprintf(stderr, "%s: bad frame from host '%s': %s; the edge is "
			        "aborted\n", l.name, peer, why);
			break;
		}
		if (h.seq != seq) {
			fprintf(stderr, "%s: sequence gap from host '%s': record %llu "
			        "expected, %llu came; the edge is aborted\n", l.name, peer,
			        (unsigned long long)seq, (unsigned long long)h.seq);
			break;
		}
		struct ir_frame_iter fi;
		const uint8_t *p;
		size_t len;
		ir_frame_iter_init(&fi, b);
		while (!closed && ir_frame_next(&fi, &p, &len)) {
			void *r = ipc_alloc(out, len);
			if (!r) {
				fprintf(stderr, "%s: no room for a %zu-byte record\n", l.name, len);
				goto out;
			}
			memcpy(r, p, len);
			if (ipc_send(out, r) < 0) {
				closed = true; /* the consumer left: tell the producer's host */
				send_hdr(&l, IR_FRAME_CLOSED, 0);
			}
		}
		seq += h.count;
		if (++pending >= every || h.flags) {
			send_hdr(&l, IR_FRAME_CREDIT, pending);
			pending = 0;
		}
		if (h.flags) {
			result = h.flags & IR_FRAME_ABORT ? 1 : 0;
			if (result)
				fprintf(stderr, "%s: the producer on host '%s' failed; the edge "
				        "is aborted\n", l.name, peer);
			break;
		}
	}
out:
	zmq_msg_close(&m);
	close_link(&l);
	return result;
}
