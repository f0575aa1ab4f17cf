"""The filer source: SeaweedFS filer notifications (webhook) in, checksum
requests (CloudEvents to ``$K_SINK``) out - the role a Knative source plays."""
