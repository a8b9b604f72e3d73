/*
 * libFuzzer target for the bridge's frame checker (runtime/ipcrun/frame.c):
 * any bytes as a received frame. What ir_frame_parse accepts is walked to
 * the end with the iterator, whose records must lie inside the input and
 * add up to the header's count. `make fuzz-frame` (part of `make fuzz`).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../../runtime/ipcrun/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ir_frame_hdr h;
	const char *why;
	if (ir_frame_parse(data, size, 8, 1u << 20, &h, &why))
		return 0;
	if (h.type != IR_FRAME_DATA)
		return 0;
	struct ir_frame_iter it;
	ir_frame_iter_init(&it, data);
	const uint8_t *rec;
	size_t n, count = 0, sum = 0;
	while (ir_frame_next(&it, &rec, &n)) {
		if (rec < data || rec + n > data + size)
			abort();
		sum ^= rec[0] ^ rec[n - 1]; /* touch both ends of the record */
		count++;
	}
	if (!(h.flags & IR_FRAME_BIG) && count != h.count)
		abort();
	return (int)(sum & 0);
}
