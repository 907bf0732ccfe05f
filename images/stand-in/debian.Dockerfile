# A stand-in for debian:bookworm-slim, for machines that reach no registry (see ./make): a
# minbase debootstrap root file system, made slim beforehand the way the official image is.
FROM scratch
ADD rootfs.tar /
CMD ["bash"]
