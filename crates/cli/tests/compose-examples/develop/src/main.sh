echo "hello from the source tree"
