FROM bb:test AS base
ARG GREETING=unset
ARG BUILD_NUMBER=0
RUN mkdir -p /opt/app && echo "$GREETING build $BUILD_NUMBER" > /opt/app/banner
COPY message.txt /opt/app/message.txt

FROM base AS runtime
ENV APP_STAGE=runtime
WORKDIR /opt/app

FROM base AS broken
RUN echo "this stage is not the target and must not be built" && exit 1
