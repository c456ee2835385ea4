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
