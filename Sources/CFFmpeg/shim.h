#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libswscale/swscale.h>
#include <libavutil/avutil.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
// AVERROR and friends are function-like macros Swift cannot import.
static inline int aim_averror(int e) { return AVERROR(e); }
static inline int aim_averror_eof(void) { return AVERROR_EOF; }
static inline int aim_averror_eagain(void) { return AVERROR(EAGAIN); }
static inline int64_t aim_av_nopts_value(void) { return AV_NOPTS_VALUE; }
static inline int aim_av_time_base(void) { return AV_TIME_BASE; }
// Macros used by AIMData (log levels, codec/format flags) that are not plain literals.
static inline int aim_av_log_quiet(void) { return AV_LOG_QUIET; }
static inline int aim_codec_flag_global_header(void) { return AV_CODEC_FLAG_GLOBAL_HEADER; }
static inline int aim_avfmt_globalheader(void) { return AVFMT_GLOBALHEADER; }
static inline int aim_avfmt_nofile(void) { return AVFMT_NOFILE; }
static inline int aim_avio_flag_write(void) { return AVIO_FLAG_WRITE; }
static inline int aim_pkt_flag_key(void) { return AV_PKT_FLAG_KEY; }
static inline int aim_avseek_flag_backward(void) { return AVSEEK_FLAG_BACKWARD; }
static inline const char *aim_av_err2str(int e, char *buf, size_t n) { av_strerror(e, buf, n); return buf; }
static inline int aim_pkt_flag_discard(void) { return AV_PKT_FLAG_DISCARD; }

// Reading one byte range of a file (a video inside a tar shard) as if it were the whole file:
// an AVIOContext whose callbacks pread from `fd` at `base + pos`, so nothing is extracted and
// any number of readers can share one descriptor (pread has no file position).
#include <unistd.h>
#include <errno.h>
#include <stdio.h>
typedef struct { int fd; int64_t base; int64_t size; int64_t pos; } aim_range_io;

static inline int aim_range_read(void *opaque, uint8_t *buf, int n) {
    aim_range_io *r = (aim_range_io *)opaque;
    int64_t left = r->size - r->pos;
    if (left <= 0) return AVERROR_EOF;
    if (n > left) n = (int)left;
    ssize_t got;
    do { got = pread(r->fd, buf, (size_t)n, (off_t)(r->base + r->pos)); } while (got < 0 && errno == EINTR);
    if (got < 0) return AVERROR(errno);
    if (got == 0) return AVERROR_EOF;  // the file is shorter than its index says
    r->pos += got;
    return (int)got;
}

static inline int64_t aim_range_seek(void *opaque, int64_t offset, int whence) {
    aim_range_io *r = (aim_range_io *)opaque;
    whence &= ~AVSEEK_FORCE;
    if (whence == AVSEEK_SIZE) return r->size;  // lets demuxers find the end (MP4 moov at the tail)
    int64_t p;
    switch (whence) {
    case SEEK_SET: p = offset; break;
    case SEEK_CUR: p = r->pos + offset; break;
    case SEEK_END: p = r->size + offset; break;
    default: return AVERROR(EINVAL);
    }
    if (p < 0 || p > r->size) return AVERROR(EINVAL);
    r->pos = p;
    return p;
}

/// A read-only AVIOContext over `r` with a 64 KiB buffer; NULL when out of memory.
static inline AVIOContext *aim_range_avio(aim_range_io *r) {
    const int n = 1 << 16;
    unsigned char *buf = (unsigned char *)av_malloc(n);
    if (!buf) return NULL;
    AVIOContext *c = avio_alloc_context(buf, n, 0, r, aim_range_read, NULL, aim_range_seek);
    if (!c) av_free(buf);
    return c;
}

/// Frees the context and its buffer (avformat_close_input leaves a custom context alone).
static inline void aim_range_avio_free(AVIOContext **c) {
    if (*c) { av_freep(&(*c)->buffer); avio_context_free(c); }
}

static inline int aim_avfmt_flag_custom_io(void) { return AVFMT_FLAG_CUSTOM_IO; }
