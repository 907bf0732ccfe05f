#include <zlib.h>

// inflateInit2 is a macro over inflateInit2_: Swift sees only the function.
static inline int funcd_inflate_init(z_stream *stream, int window_bits) {
    return inflateInit2(stream, window_bits);
}
