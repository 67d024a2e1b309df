#ifndef KILN_CDNNL_SHIM_H
#define KILN_CDNNL_SHIM_H
#include <oneapi/dnnl/dnnl.h>

// Macros do not import into Swift; these wrappers give them names Swift can call.
static inline void *kiln_dnnl_memory_allocate(void) { return DNNL_MEMORY_ALLOCATE; }
static inline void *kiln_dnnl_memory_none(void) { return DNNL_MEMORY_NONE; }
static inline int kiln_dnnl_arg_src(void) { return DNNL_ARG_SRC; }
static inline int kiln_dnnl_arg_src_1(void) { return DNNL_ARG_SRC_1; }
static inline int kiln_dnnl_arg_dst(void) { return DNNL_ARG_DST; }
static inline int kiln_dnnl_arg_weights(void) { return DNNL_ARG_WEIGHTS; }
static inline int kiln_dnnl_arg_bias(void) { return DNNL_ARG_BIAS; }
static inline int kiln_dnnl_arg_mean(void) { return DNNL_ARG_MEAN; }
static inline int kiln_dnnl_arg_variance(void) { return DNNL_ARG_VARIANCE; }
static inline int kiln_dnnl_arg_scale_shift(void) { return DNNL_ARG_SCALE_SHIFT; }
static inline int kiln_dnnl_arg_scale(void) { return DNNL_ARG_SCALE; }
static inline int kiln_dnnl_arg_shift(void) { return DNNL_ARG_SHIFT; }
static inline int kiln_dnnl_arg_workspace(void) { return DNNL_ARG_WORKSPACE; }
static inline int kiln_dnnl_arg_scratchpad(void) { return DNNL_ARG_SCRATCHPAD; }
static inline int kiln_dnnl_arg_multiple_src(void) { return DNNL_ARG_MULTIPLE_SRC; }
static inline int kiln_dnnl_arg_from(void) { return DNNL_ARG_FROM; }
static inline int kiln_dnnl_arg_to(void) { return DNNL_ARG_TO; }
static inline int kiln_dnnl_max_ndims(void) { return DNNL_MAX_NDIMS; }
#endif
