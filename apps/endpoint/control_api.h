/*
 * control_api.h: the two SageMaker control-plane calls a client makes before
 * a run, DescribeEndpoint and DescribeEndpointConfig, answered for the
 * endpoints the local server declares.
 *
 * The SageMaker API is an AWS JSON 1.1 service: every call is a POST to "/"
 * with X-Amz-Target: SageMaker.<Operation>, a JSON body and
 * Content-Type: application/x-amz-json-1.1, signed for "sagemaker".  The
 * answers carry what a client needs to check an endpoint before it uploads
 * anything: that it exists, is InService, is asynchronous at all
 * (AsyncInferenceConfig present) and where its outputs and failures go
 * (S3OutputPath, S3FailurePath: absent for failure=none).
 *
 * Each declared endpoint has one endpoint configuration of the same name.
 * -deny sagemaker:DescribeEndpoint[:NAME] (policy.h) answers 400
 * AccessDeniedException as the service does.
 */
#ifndef ASD_EP_CONTROL_API_H
#define ASD_EP_CONTROL_API_H

#include "server.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ep_runtime;
struct ep_policy;

/* Is this a SageMaker control-plane request (POST / with an
 * X-Amz-Target of SageMaker.*)?  target may be NULL. */
int ep_control_api_matches(const char *method, const char *path, const char *target);

/*
 * Answers an authenticated control-plane request into resp.  runtime may be
 * NULL (no endpoints: every name is unknown); policy may be NULL.
 * region names the ARNs' region.
 */
void ep_control_api_handle(struct ep_runtime *runtime, const struct ep_policy *policy, const char *region,
                            const ep_request *req, ep_response *resp);

#ifdef __cplusplus
}
#endif

#endif /* ASD_EP_CONTROL_API_H */
