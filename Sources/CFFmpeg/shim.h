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
