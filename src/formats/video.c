/* Video input and output: a folder of frames (sorted by name) or a video file decoded with FFmpeg's
 * libraries; T frames sampled uniformly; MP4 writing (MPEG-4 part 2, FFmpeg's own encoder, so no
 * external codec is needed) for the stimulus engine's videos. */
#define _POSIX_C_SOURCE 200809L
#include "idscope/formats.h"
#include "base/internal.h"

#include <dirent.h>
#include <errno.h>
#include <strings.h>
#include <sys/stat.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

void ids_video_sample_indices(int n_total, int n, int *idx) {
    /* floor of an even spacing from the first to the last frame (numpy linspace(0, N-1, n) as int) */
    for (int i = 0; i < n; i++)
        idx[i] = n == 1 ? 0 : (int)(((int64_t)i * (n_total - 1)) / (n - 1));
}

void ids_video_free(ids_image *frames, int n) {
    for (int i = 0; frames && i < n; i++) ids_image_free(&frames[i]);
    free(frames);
}

static bool is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot || name[0] == '.') return false;
    static const char *const ext[] = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm"};
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (!strcasecmp(dot, ext[i])) return true;
    return false;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static ids_status load_folder(const char *dir, int n, ids_image **out, int *n_total, ids_err *err) {
    DIR *d = opendir(dir);
    if (!d) return ids__err(err, IDS_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    char **names = NULL;
    int cnt = 0, cap = 0;
    ids_status st = IDS_OK;
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_image_name(e->d_name)) continue;
        if (cnt == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = ids__realloc(names, sizeof *nn * (size_t)cap);
            if (!nn) {
                st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", dir);
                break;
            }
            names = nn;
        }
        if (!(names[cnt] = ids__strdup(e->d_name))) {
            st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", dir);
            break;
        }
        cnt++;
    }
    closedir(d);
    *n_total = cnt;
    if (!st && cnt < n)
        st = ids__err(err, IDS_ERR_RANGE, "%s: %d frame image%s, %d asked", dir, cnt, cnt == 1 ? "" : "s", n);
    ids_image *fr = NULL;
    if (!st) {
        qsort(names, (size_t)cnt, sizeof *names, cmp_str);
        fr = ids__calloc((size_t)n, sizeof *fr);
        int *idx = ids__malloc(sizeof(int) * (size_t)n);
        if (!fr || !idx) st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", dir);
        if (!st) ids_video_sample_indices(cnt, n, idx);
        for (int i = 0; !st && i < n; i++) {
            char path[2048];
            snprintf(path, sizeof path, "%s/%s", dir, names[idx[i]]);
            st = ids_image_load(&fr[i], path, err);
            if (!st && i > 0 && (fr[i].w != fr[0].w || fr[i].h != fr[0].h))
                st = ids__err(err, IDS_ERR_FORMAT, "%s: frame %dx%d, but the first frame is %dx%d", path, fr[i].w, fr[i].h,
                              fr[0].w, fr[0].h);
        }
        free(idx);
    }
    for (int i = 0; i < cnt; i++) free(names[i]);
    free(names);
    if (st) {
        ids_video_free(fr, n);
        return st;
    }
    *out = fr;
    return IDS_OK;
}

/* ---- decoding ---- */

typedef struct {
    AVFormatContext *fmt;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;
    struct SwsContext *sws;
    int stream;
    uint8_t *rgb; /* swscale's output, padded (see drain) */
    size_t rgb_cap;
} decoder;

static void dec_close(decoder *d) {
    free(d->rgb);
    sws_freeContext(d->sws);
    av_frame_free(&d->frame);
    av_packet_free(&d->pkt);
    avcodec_free_context(&d->dec);
    avformat_close_input(&d->fmt);
    memset(d, 0, sizeof *d);
}

static ids_status av_fail(const char *path, const char *what, int rc, ids_err *err) {
    char msg[AV_ERROR_MAX_STRING_SIZE] = {0};
    av_strerror(rc, msg, sizeof msg);
    return ids__err(err, IDS_ERR_FORMAT, "%s: %s: %s", path, what, msg);
}

#define VIDEO_CONTAINERS "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,gif,mpeg,mpegts,flv,ogg,h264,hevc,m4v,mjpeg"

static ids_status dec_open(decoder *d, const char *path, ids_err *err) {
    memset(d, 0, sizeof *d);
    av_log_set_level(AV_LOG_QUIET); /* failures come back as errors naming the file, not as log lines */
    /* Only the containers videos come in, and only local files: FFmpeg's playlist and concatenation
     * demuxers (HLS, ffconcat, ...) would open other files or URLs named inside the input. */
    AVDictionary *opt = NULL;
    av_dict_set(&opt, "format_whitelist", VIDEO_CONTAINERS, 0);
    av_dict_set(&opt, "protocol_whitelist", "file", 0);
    int rc = avformat_open_input(&d->fmt, path, NULL, &opt);
    av_dict_free(&opt);
    if (rc < 0) {
        char msg[AV_ERROR_MAX_STRING_SIZE] = {0};
        av_strerror(rc, msg, sizeof msg);
        return ids__err(err, IDS_ERR_FORMAT, "%s: cannot open as a video (%s; containers read: MP4/MOV, Matroska/WebM, "
                        "AVI, GIF, MPEG-PS/TS, FLV, Ogg, raw H.264/HEVC/MPEG-4/MJPEG streams)", path, msg);
    }
    if ((rc = avformat_find_stream_info(d->fmt, NULL)) < 0) {
        dec_close(d);
        return av_fail(path, "cannot read stream information", rc, err);
    }
    const AVCodec *codec = NULL;
    d->stream = av_find_best_stream(d->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (d->stream < 0 || !codec) {
        dec_close(d);
        return ids__err(err, IDS_ERR_FORMAT, "%s: no decodable video stream", path);
    }
    d->dec = avcodec_alloc_context3(codec);
    d->pkt = av_packet_alloc();
    d->frame = av_frame_alloc();
    if (!d->dec || !d->pkt || !d->frame) {
        dec_close(d);
        return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    }
    d->dec->thread_count = 1;
    /* the frame size from the stream's header, checked against the pixel budget before decoding */
    const AVCodecParameters *par = d->fmt->streams[d->stream]->codecpar;
    ids_status st = par->width > 0 && par->height > 0 ? ids_image_check_size(par->width, par->height, path, err) : IDS_OK;
    if (st) {
        dec_close(d);
        return st;
    }
    if ((rc = avcodec_parameters_to_context(d->dec, d->fmt->streams[d->stream]->codecpar)) < 0 ||
        (rc = avcodec_open2(d->dec, codec, NULL)) < 0) {
        dec_close(d);
        return av_fail(path, "cannot open the decoder", rc, err);
    }
    return IDS_OK;
}

/* Receive every frame the decoder has ready; convert the wanted ones. want[] (ascending) lists the
 * frame numbers to keep; *k counts those kept, *count the frames seen. */
static ids_status drain(decoder *d, const char *path, const int *want, int n_want, ids_image *imgs, int *k, int *count,
                        ids_err *err) {
    for (;;) {
        int rc = avcodec_receive_frame(d->dec, d->frame);
        if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return IDS_OK;
        if (rc < 0) return av_fail(path, "cannot decode a frame", rc, err);
        ids_status st = IDS_OK;
        while (*k < n_want && want[*k] == *count) {
            const int w = d->frame->width, h = d->frame->height;
            if ((st = ids_image_check_size(w, h, path, err))) break;
            /* a stream may change its size midway: every frame kept comes out at the first one's size */
            const int ow = *k > 0 ? imgs[0].w : w, oh = *k > 0 ? imgs[0].h : h;
            d->sws = sws_getCachedContext(d->sws, w, h, (enum AVPixelFormat)d->frame->format, ow, oh, AV_PIX_FMT_RGB24,
                                          SWS_BICUBIC, NULL, NULL, NULL);
            if (!d->sws) {
                st = ids__err(err, IDS_ERR_FORMAT, "%s: frame %d: cannot convert pixel format %d", path, *count,
                              d->frame->format);
                break;
            }
            if ((st = ids_image_new(&imgs[*k], ow, oh, NULL, err))) break;
            /* swscale's SIMD writers store whole blocks of pixels: past the end of an exactly sized row
             * (24 bytes past an 8x6 JPEG frame). They get aligned rows with room to spare and two
             * spare rows; the pixels are then copied into the image. */
            const size_t w32 = ((size_t)ow + 31) / 32 * 32, ls0 = (3 * w32 + 63) / 64 * 64, need = ls0 * ((size_t)oh + 2);
            if (need > d->rgb_cap) {
                free(d->rgb);
                d->rgb_cap = 0;
                if (!(d->rgb = ids__malloc(need))) {
                    ids_image_free(&imgs[*k]);
                    st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory for frame %d", path, *count);
                    break;
                }
                d->rgb_cap = need;
            }
            uint8_t *dst[4] = {d->rgb, NULL, NULL, NULL};
            int ls[4] = {(int)ls0, 0, 0, 0};
            sws_scale(d->sws, (const uint8_t *const *)d->frame->data, d->frame->linesize, 0, h, dst, ls);
            for (int y = 0; y < oh; y++) memcpy(imgs[*k].rgb + (size_t)y * 3 * ow, d->rgb + (size_t)y * ls0, 3 * (size_t)ow);
            (*k)++;
        }
        av_frame_unref(d->frame);
        if (st) return st;
        (*count)++;
    }
}

/* Decode every frame in order, keeping the wanted ones; *n receives the frame count. */
static ids_status dec_run(decoder *d, const char *path, const int *want, int n_want, ids_image *imgs, int *n,
                          ids_err *err) {
    int count = 0, k = 0, rc;
    ids_status st = IDS_OK;
    while (!st && (rc = av_read_frame(d->fmt, d->pkt)) >= 0) {
        if (d->pkt->stream_index == d->stream) {
            /* a packet the decoder cannot take yet (EAGAIN) goes in again once its frames are out */
            while (!st && (rc = avcodec_send_packet(d->dec, d->pkt)) == AVERROR(EAGAIN))
                st = drain(d, path, want, n_want, imgs, &k, &count, err);
            if (!st && rc < 0) st = av_fail(path, "corrupt video data", rc, err);
            if (!st) st = drain(d, path, want, n_want, imgs, &k, &count, err);
        }
        av_packet_unref(d->pkt);
    }
    if (!st && rc != AVERROR_EOF) st = av_fail(path, "cannot read", rc, err);
    if (!st && (rc = avcodec_send_packet(d->dec, NULL)) < 0 && rc != AVERROR_EOF) st = av_fail(path, "cannot flush", rc, err);
    if (!st) st = drain(d, path, want, n_want, imgs, &k, &count, err);
    *n = count;
    return st;
}

static ids_status load_file(const char *path, int n, ids_image **out, int *n_total, ids_err *err) {
    decoder d;
    ids_status st = dec_open(&d, path, err);
    if (st) return st;
    /* count first (container frame counts are unreliable), then decode again keeping the samples */
    int total = 0;
    st = dec_run(&d, path, NULL, 0, NULL, &total, err);
    dec_close(&d);
    if (st) return st;
    *n_total = total;
    if (total < n) return ids__err(err, IDS_ERR_RANGE, "%s: %d decodable frame%s, %d asked", path, total, total == 1 ? "" : "s", n);
    int *idx = ids__malloc(sizeof(int) * (size_t)n);
    ids_image *fr = ids__calloc((size_t)n, sizeof *fr);
    if (!idx || !fr) {
        free(idx);
        free(fr);
        return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
    }
    ids_video_sample_indices(total, n, idx);
    int again = 0;
    st = dec_open(&d, path, err);
    if (!st) {
        st = dec_run(&d, path, idx, n, fr, &again, err);
        dec_close(&d);
    }
    if (!st && (again != total || !fr[n - 1].rgb))
        st = ids__err(err, IDS_ERR_FORMAT, "%s: %d frames on the first pass, %d on the second", path, total, again);
    free(idx);
    if (st) {
        ids_video_free(fr, n);
        return st;
    }
    *out = fr;
    return IDS_OK;
}

ids_status ids_video_load(const char *path, int n_frames, ids_image **frames, int *n_total, ids_err *err) {
    *frames = NULL;
    int dummy;
    if (!n_total) n_total = &dummy;
    *n_total = 0;
    if (n_frames < 1 || n_frames > 1024) return ids__err(err, IDS_ERR_ARG, "%s: %d frames asked (1..1024)", path, n_frames);
    struct stat sb;
    if (stat(path, &sb) != 0) return ids__err(err, IDS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return load_folder(path, n_frames, frames, n_total, err);
    /* a still image is a video of one frame, decoded by the image reader (its format checks and pixel
     * budget), not by FFmpeg */
    unsigned char head[16] = {0};
    FILE *f = fopen(path, "rb");
    const size_t nh = f ? fread(head, 1, sizeof head, f) : 0;
    if (f) fclose(f);
    if (ids_image_is_still(head, nh)) {
        *n_total = 1;
        if (n_frames > 1) return ids__err(err, IDS_ERR_RANGE, "%s: 1 decodable frame (a still image), %d asked", path, n_frames);
        ids_image *fr = ids__calloc(1, sizeof *fr);
        if (!fr) return ids__err(err, IDS_ERR_NOMEM, "%s: out of memory", path);
        ids_status st = ids_image_load(fr, path, err);
        if (st) {
            free(fr);
            return st;
        }
        *frames = fr;
        return IDS_OK;
    }
    return load_file(path, n_frames, frames, n_total, err);
}

/* ---- encoding ---- */

ids_status ids_video_write_mp4(const ids_image *frames, int n, int fps, const char *path, ids_err *err) {
    if (n < 1 || !frames[0].rgb) return ids__err(err, IDS_ERR_ARG, "%s: no frames to write", path);
    const int w = frames[0].w, h = frames[0].h;
    for (int i = 1; i < n; i++)
        if (frames[i].w != w || frames[i].h != h)
            return ids__err(err, IDS_ERR_ARG, "%s: frame %d is %dx%d, frame 0 %dx%d", path, i, frames[i].w, frames[i].h, w, h);
    const int W = (w + 1) & ~1, H = (h + 1) & ~1; /* 4:2:0 needs even sizes: pad by one pixel */
    char tmp[2100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    AVFormatContext *oc = NULL;
    AVCodecContext *enc = NULL;
    AVFrame *fr = NULL;
    AVPacket *pkt = NULL;
    struct SwsContext *sws = NULL;
    uint8_t *padded = NULL;
    ids_status st = IDS_OK;
    int rc = avformat_alloc_output_context2(&oc, NULL, "mp4", tmp);
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
    AVStream *vs = oc && codec ? avformat_new_stream(oc, NULL) : NULL;
    enc = codec ? avcodec_alloc_context3(codec) : NULL;
    fr = av_frame_alloc();
    pkt = av_packet_alloc();
    /* swscale's RGB readers may load a few bytes past the last pixel: keep FFmpeg's usual padding */
    padded = ids__malloc((size_t)W * H * 3 + AV_INPUT_BUFFER_PADDING_SIZE);
    if (padded) memset(padded + (size_t)W * H * 3, 0, AV_INPUT_BUFFER_PADDING_SIZE);
    if (!codec) {
        st = ids__err(err, IDS_ERR_UNSUPPORTED, "%s: cannot set up the MP4 writer: this FFmpeg has no MPEG-4 encoder",
                      path);
        goto done;
    }
    if (rc < 0 || !vs || !enc || !fr || !pkt || !padded) {
        st = ids__err(err, IDS_ERR_NOMEM, "%s: cannot set up the MP4 writer: out of memory", path);
        goto done;
    }
    enc->width = W;
    enc->height = H;
    enc->pix_fmt = AV_PIX_FMT_YUV420P;
    enc->time_base = (AVRational){1, fps > 0 ? fps : 8};
    enc->framerate = (AVRational){fps > 0 ? fps : 8, 1};
    enc->gop_size = 1; /* every frame a key frame: exact frame access, small files anyway */
    enc->flags |= AV_CODEC_FLAG_QSCALE;
    enc->global_quality = FF_QP2LAMBDA * 2;
    enc->thread_count = 1;
    if (oc->oformat->flags & AVFMT_GLOBALHEADER) enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((rc = avcodec_open2(enc, codec, NULL)) < 0 || (rc = avcodec_parameters_from_context(vs->codecpar, enc)) < 0) {
        st = av_fail(path, "cannot open the MPEG-4 encoder", rc, err);
        goto done;
    }
    vs->time_base = enc->time_base;
    if ((rc = avio_open(&oc->pb, tmp, AVIO_FLAG_WRITE)) < 0) {
        st = av_fail(tmp, "cannot write", rc, err);
        goto done;
    }
    if ((rc = avformat_write_header(oc, NULL)) < 0) {
        st = av_fail(path, "cannot write the MP4 header", rc, err);
        goto done;
    }
    fr->format = AV_PIX_FMT_YUV420P;
    fr->width = W;
    fr->height = H;
    if ((rc = av_frame_get_buffer(fr, 0)) < 0 ||
        !(sws = sws_getContext(W, H, AV_PIX_FMT_RGB24, W, H, AV_PIX_FMT_YUV420P, SWS_BICUBIC, NULL, NULL, NULL))) {
        st = ids__err(err, IDS_ERR_NOMEM, "%s: out of memory for the video frames", path);
        goto done;
    }
    for (int i = 0; i <= n && !st; i++) {
        AVFrame *send = NULL;
        if (i < n) {
            for (int y = 0; y < H; y++) /* edge-replicate into the even-sized frame */
                for (int x = 0; x < W; x++)
                    memcpy(padded + ((size_t)y * W + x) * 3,
                           frames[i].rgb + ((size_t)(y < h ? y : h - 1) * w + (x < w ? x : w - 1)) * 3, 3);
            if ((rc = av_frame_make_writable(fr)) < 0) {
                st = av_fail(path, "frame buffer", rc, err);
                break;
            }
            const uint8_t *src[4] = {padded, NULL, NULL, NULL};
            int ls[4] = {3 * W, 0, 0, 0};
            sws_scale(sws, src, ls, 0, H, fr->data, fr->linesize);
            fr->pts = i;
            fr->quality = enc->global_quality;
            send = fr;
        }
        if ((rc = avcodec_send_frame(enc, send)) < 0) {
            st = av_fail(path, "cannot encode a frame", rc, err);
            break;
        }
        while ((rc = avcodec_receive_packet(enc, pkt)) >= 0) {
            pkt->duration = 1; /* one frame: without it the MP4 edit list drops the last frame */
            av_packet_rescale_ts(pkt, enc->time_base, vs->time_base);
            pkt->stream_index = vs->index;
            if ((rc = av_interleaved_write_frame(oc, pkt)) < 0) {
                st = av_fail(path, "cannot write a packet", rc, err);
                break;
            }
        }
    }
    if (!st && (rc = av_write_trailer(oc)) < 0) st = av_fail(path, "cannot finish the MP4", rc, err);
done:
    if (oc && oc->pb) avio_closep(&oc->pb);
    avformat_free_context(oc);
    avcodec_free_context(&enc);
    av_frame_free(&fr);
    av_packet_free(&pkt);
    sws_freeContext(sws);
    free(padded);
    if (!st && rename(tmp, path) != 0) st = ids__err(err, IDS_ERR_IO, "%s: cannot rename into place: %s", path, strerror(errno));
    if (st) remove(tmp);
    return st;
}
