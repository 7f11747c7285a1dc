-- a new monalia catalog at schema revision 0013; made by the migrations
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('0013');
CREATE TABLE audit_findings (
	id INTEGER NOT NULL, 
	image_id INTEGER NOT NULL, 
	record_id INTEGER NOT NULL, 
	kind VARCHAR(40) NOT NULL, 
	scope VARCHAR(10) NOT NULL, 
	score FLOAT NOT NULL, 
	detail JSON, 
	dataset_id INTEGER, 
	model_id INTEGER, 
	run_id INTEGER, 
	found_at DATETIME NOT NULL, 
	CONSTRAINT pk_audit_findings PRIMARY KEY (id), 
	CONSTRAINT fk_audit_findings_image_id_images FOREIGN KEY(image_id) REFERENCES images (id) ON DELETE CASCADE, 
	CONSTRAINT fk_audit_findings_record_id_records FOREIGN KEY(record_id) REFERENCES records (id) ON DELETE CASCADE, 
	CONSTRAINT fk_audit_findings_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE TABLE confident_findings (
	id INTEGER NOT NULL, 
	score_set_id INTEGER NOT NULL, 
	kind VARCHAR(10) NOT NULL, 
	class_uri VARCHAR(1000) NOT NULL, 
	image_id INTEGER NOT NULL, 
	rank INTEGER NOT NULL, 
	score FLOAT NOT NULL, 
	CONSTRAINT pk_confident_findings PRIMARY KEY (id), 
	CONSTRAINT fk_confident_findings_score_set_id_models FOREIGN KEY(score_set_id) REFERENCES models (id) ON DELETE CASCADE, 
	CONSTRAINT fk_confident_findings_image_id_images FOREIGN KEY(image_id) REFERENCES images (id) ON DELETE CASCADE
);
CREATE TABLE dataset_members (
	id INTEGER NOT NULL, 
	dataset_id INTEGER NOT NULL, 
	image_id INTEGER NOT NULL, 
	record_id INTEGER NOT NULL, 
	split VARCHAR(10) NOT NULL, 
	labels JSON NOT NULL, 
	CONSTRAINT pk_dataset_members PRIMARY KEY (id), 
	CONSTRAINT fk_dataset_members_dataset_id_datasets FOREIGN KEY(dataset_id) REFERENCES datasets (id) ON DELETE CASCADE, 
	CONSTRAINT fk_dataset_members_image_id_images FOREIGN KEY(image_id) REFERENCES images (id) ON DELETE CASCADE, 
	CONSTRAINT fk_dataset_members_record_id_records FOREIGN KEY(record_id) REFERENCES records (id) ON DELETE CASCADE, 
	CONSTRAINT uq_dataset_members_image UNIQUE (dataset_id, image_id)
);
CREATE TABLE datasets (
	id INTEGER NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	hash VARCHAR(64) NOT NULL, 
	classes JSON NOT NULL, 
	settings JSON NOT NULL, 
	stats JSON, 
	created_at DATETIME NOT NULL, 
	run_id INTEGER, class_concepts JSON, 
	CONSTRAINT pk_datasets PRIMARY KEY (id), 
	CONSTRAINT fk_datasets_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id), 
	CONSTRAINT uq_datasets_hash UNIQUE (hash)
);
CREATE TABLE duplicate_pairs (
	id INTEGER NOT NULL, 
	group_number INTEGER NOT NULL, 
	image_a INTEGER NOT NULL, 
	image_b INTEGER NOT NULL, 
	record_a INTEGER NOT NULL, 
	record_b INTEGER NOT NULL, 
	similarity FLOAT NOT NULL, 
	method VARCHAR(20) NOT NULL, 
	embedder VARCHAR(200) NOT NULL, 
	threshold FLOAT NOT NULL, 
	found_at DATETIME NOT NULL, 
	run_id INTEGER, 
	CONSTRAINT pk_duplicate_pairs PRIMARY KEY (id), 
	CONSTRAINT fk_duplicate_pairs_image_a_images FOREIGN KEY(image_a) REFERENCES images (id) ON DELETE CASCADE, 
	CONSTRAINT fk_duplicate_pairs_image_b_images FOREIGN KEY(image_b) REFERENCES images (id) ON DELETE CASCADE, 
	CONSTRAINT fk_duplicate_pairs_record_a_records FOREIGN KEY(record_a) REFERENCES records (id) ON DELETE CASCADE, 
	CONSTRAINT fk_duplicate_pairs_record_b_records FOREIGN KEY(record_b) REFERENCES records (id) ON DELETE CASCADE, 
	CONSTRAINT fk_duplicate_pairs_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE TABLE images (
	id INTEGER NOT NULL, 
	record_id INTEGER NOT NULL, 
	position INTEGER NOT NULL, 
	url VARCHAR(2000) NOT NULL, 
	iiif_service VARCHAR(2000), 
	is_main BOOLEAN NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	http_status INTEGER, 
	bytes BIGINT, 
	sha256 VARCHAR(64), 
	width INTEGER, 
	height INTEGER, 
	path VARCHAR(1000), 
	fetched_at DATETIME, 
	error TEXT, 
	CONSTRAINT pk_images PRIMARY KEY (id), 
	CONSTRAINT fk_images_record_id_records FOREIGN KEY(record_id) REFERENCES records (id) ON DELETE CASCADE, 
	CONSTRAINT uq_images_record_id_url UNIQUE (record_id, url)
);
CREATE TABLE model_classes (
	model_id INTEGER NOT NULL, 
	class_index SMALLINT NOT NULL, 
	uri VARCHAR(1000) NOT NULL, 
	CONSTRAINT pk_model_classes PRIMARY KEY (model_id, class_index), 
	CONSTRAINT fk_model_classes_model_id_models FOREIGN KEY(model_id) REFERENCES models (id) ON DELETE CASCADE, 
	CONSTRAINT uq_model_classes_model_id UNIQUE (model_id, uri)
);
CREATE TABLE models (
	id INTEGER NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	trainer VARCHAR(100) NOT NULL, 
	backbone VARCHAR(100), 
	dataset_id INTEGER, 
	classes JSON NOT NULL, 
	thresholds JSON, 
	metrics JSON, 
	card JSON, 
	path VARCHAR(1000), 
	created_at DATETIME NOT NULL, 
	run_id INTEGER, 
	CONSTRAINT pk_models PRIMARY KEY (id), 
	CONSTRAINT fk_models_dataset_id_datasets FOREIGN KEY(dataset_id) REFERENCES datasets (id), 
	CONSTRAINT fk_models_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id), 
	CONSTRAINT uq_models_name UNIQUE (name)
);
CREATE TABLE predictions (
	model_id INTEGER NOT NULL, 
	image_id INTEGER NOT NULL, 
	class_index SMALLINT NOT NULL, 
	score FLOAT NOT NULL, 
	CONSTRAINT pk_predictions PRIMARY KEY (model_id, image_id, class_index)
);
CREATE TABLE record_subjects (
	id INTEGER NOT NULL, 
	record_id INTEGER NOT NULL, 
	position INTEGER NOT NULL, 
	uri VARCHAR(1000), 
	label TEXT, 
	lang VARCHAR(35), 
	field VARCHAR(100), 
	CONSTRAINT pk_record_subjects PRIMARY KEY (id), 
	CONSTRAINT fk_record_subjects_record_id_records FOREIGN KEY(record_id) REFERENCES records (id) ON DELETE CASCADE
);
CREATE TABLE records (
	id INTEGER NOT NULL, 
	source VARCHAR(100) NOT NULL, 
	source_id VARCHAR(500) NOT NULL, 
	iri VARCHAR(1000) NOT NULL, 
	title TEXT, 
	creators JSON NOT NULL, 
	date VARCHAR(200), 
	date_start INTEGER, 
	date_end INTEGER, 
	institution TEXT, 
	rights TEXT, 
	landing_page TEXT, 
	modified VARCHAR(100), 
	raw JSON, 
	content_hash VARCHAR(64) NOT NULL, 
	first_seen DATETIME NOT NULL, 
	last_seen DATETIME NOT NULL, 
	first_run_id INTEGER, 
	last_run_id INTEGER, description TEXT, deleted_at DATETIME, 
	CONSTRAINT pk_records PRIMARY KEY (id), 
	CONSTRAINT fk_records_first_run_id_runs FOREIGN KEY(first_run_id) REFERENCES runs (id), 
	CONSTRAINT fk_records_last_run_id_runs FOREIGN KEY(last_run_id) REFERENCES runs (id), 
	CONSTRAINT uq_records_iri UNIQUE (iri), 
	CONSTRAINT uq_records_source_source_id UNIQUE (source, source_id)
);
CREATE TABLE regions (
	model_id INTEGER NOT NULL, 
	image_id INTEGER NOT NULL, 
	class_index SMALLINT NOT NULL, 
	record_id INTEGER NOT NULL, 
	boxes JSON NOT NULL, 
	image_width INTEGER NOT NULL, 
	image_height INTEGER NOT NULL, 
	fraction FLOAT NOT NULL, 
	run_id INTEGER, 
	made_at DATETIME NOT NULL, 
	CONSTRAINT pk_regions PRIMARY KEY (model_id, image_id, class_index)
);
CREATE TABLE review_decisions (
	id INTEGER NOT NULL, 
	record_id INTEGER, 
	record_iri VARCHAR(1000) NOT NULL, 
	class_uri VARCHAR(1000) NOT NULL, 
	class_label VARCHAR(500), 
	kind VARCHAR(10) NOT NULL, 
	decision VARCHAR(10) NOT NULL, 
	comment TEXT, 
	reviewer VARCHAR(200) NOT NULL, 
	model_id INTEGER, 
	model_name VARCHAR(200), 
	score FLOAT, 
	image_url VARCHAR(2000), 
	method VARCHAR(20), 
	annotated BOOLEAN, 
	decided_at DATETIME NOT NULL, region JSON, 
	CONSTRAINT pk_review_decisions PRIMARY KEY (id), 
	CONSTRAINT fk_review_decisions_record_id_records FOREIGN KEY(record_id) REFERENCES records (id) ON DELETE SET NULL, 
	CONSTRAINT fk_review_decisions_model_id_models FOREIGN KEY(model_id) REFERENCES models (id) ON DELETE SET NULL
);
CREATE TABLE run_events (
	id INTEGER NOT NULL, 
	run_id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	level VARCHAR(10) NOT NULL, 
	item VARCHAR(1000), 
	message TEXT NOT NULL, 
	CONSTRAINT pk_run_events PRIMARY KEY (id), 
	CONSTRAINT fk_run_events_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE TABLE runs (
	id INTEGER NOT NULL, 
	stage VARCHAR(50) NOT NULL, 
	plugin VARCHAR(100), 
	target VARCHAR(200), 
	settings JSON NOT NULL, 
	status VARCHAR(20) NOT NULL, 
	started_at DATETIME NOT NULL, 
	ended_at DATETIME, 
	heartbeat_at DATETIME NOT NULL, 
	host VARCHAR(255) NOT NULL, 
	pid INTEGER NOT NULL, 
	pid_started VARCHAR(40), 
	seen INTEGER NOT NULL, 
	new INTEGER NOT NULL, 
	changed INTEGER NOT NULL, 
	unchanged INTEGER NOT NULL, 
	failed INTEGER NOT NULL, 
	message TEXT, warnings INTEGER DEFAULT '0' NOT NULL, 
	CONSTRAINT pk_runs PRIMARY KEY (id)
);
CREATE TABLE scored_images (
	model_id INTEGER NOT NULL, 
	image_id INTEGER NOT NULL, 
	record_id INTEGER NOT NULL, 
	image_sha256 VARCHAR(64), 
	run_id INTEGER, 
	scored_at DATETIME NOT NULL, 
	CONSTRAINT pk_scored_images PRIMARY KEY (model_id, image_id), 
	CONSTRAINT fk_scored_images_image_id_images FOREIGN KEY(image_id) REFERENCES images (id) ON DELETE CASCADE, 
	CONSTRAINT fk_scored_images_model_id_models FOREIGN KEY(model_id) REFERENCES models (id) ON DELETE CASCADE
);
CREATE TABLE source_states (
	source VARCHAR(100) NOT NULL, 
	plugin VARCHAR(100) NOT NULL, 
	bookmark JSON, 
	checkpoint JSON, 
	updated_at DATETIME NOT NULL, 
	last_run_id INTEGER, 
	CONSTRAINT pk_source_states PRIMARY KEY (source), 
	CONSTRAINT fk_source_states_last_run_id_runs FOREIGN KEY(last_run_id) REFERENCES runs (id)
);
CREATE TABLE subject_matches (
	id INTEGER NOT NULL, 
	record_id INTEGER NOT NULL, 
	dataset VARCHAR(200) NOT NULL, 
	field VARCHAR(100), 
	text TEXT NOT NULL, 
	lang VARCHAR(20), 
	concept VARCHAR(1000) NOT NULL, 
	how VARCHAR(20) NOT NULL, 
	thesaurus VARCHAR(100), 
	run_id INTEGER, 
	CONSTRAINT pk_subject_matches PRIMARY KEY (id), 
	CONSTRAINT fk_subject_matches_record_id_records FOREIGN KEY(record_id) REFERENCES records (id) ON DELETE CASCADE, 
	CONSTRAINT fk_subject_matches_run_id_runs FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE TABLE taught_classes (
	id INTEGER NOT NULL, 
	uri VARCHAR(1000) NOT NULL, 
	label VARCHAR(500) NOT NULL, 
	created_by VARCHAR(200) NOT NULL, 
	created_at DATETIME NOT NULL, 
	CONSTRAINT pk_taught_classes PRIMARY KEY (id), 
	CONSTRAINT uq_taught_classes_uri UNIQUE (uri)
);
CREATE INDEX ix_runs_status ON runs (status);
CREATE INDEX ix_run_events_run_id ON run_events (run_id);
CREATE INDEX ix_record_subjects_record_id ON record_subjects (record_id);
CREATE INDEX ix_images_sha256 ON images (sha256);
CREATE INDEX ix_images_status ON images (status);
CREATE INDEX ix_dataset_members_dataset_id ON dataset_members (dataset_id);
CREATE INDEX ix_review_decisions_finding ON review_decisions (record_iri, class_uri);
CREATE INDEX ix_duplicate_pairs_record_a ON duplicate_pairs (record_a);
CREATE INDEX ix_duplicate_pairs_record_b ON duplicate_pairs (record_b);
CREATE INDEX ix_predictions_class_score ON predictions (model_id, class_index, score);
CREATE INDEX ix_regions_record_id ON regions (record_id);
CREATE INDEX ix_audit_findings_kind ON audit_findings (kind);
CREATE INDEX ix_audit_findings_image_id ON audit_findings (image_id);
CREATE INDEX ix_subject_matches_dataset_record ON subject_matches (dataset, record_id);
CREATE INDEX ix_confident_findings_set_kind ON confident_findings (score_set_id, kind, rank);
CREATE INDEX ix_record_subjects_uri ON record_subjects (uri) WHERE uri IS NOT NULL;
